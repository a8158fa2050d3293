import { DATABASE_NAME_RULE, isValidDatabaseName } from '../../common/names';
import { FailureType, failure } from '../../common/failures';
import type { Config } from '../config';

/** `--database`, default PGDATABASE, checked before anything connects. */
export function databaseOption(config: Config, database: string | undefined): string {
  const name = database ?? config.pg.database;
  if (!isValidDatabaseName(name)) {
    throw failure(
      FailureType.InvalidInput,
      `--database ${JSON.stringify(name)} is not a valid database name: use ${DATABASE_NAME_RULE}`,
    );
  }
  return name;
}
