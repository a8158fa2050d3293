import { assertDatabaseName, InputError } from '../../common/names';
import { FailureType, failure } from '../../common/failures';
import type { Config } from '../config';

/**
 * A database name typed as `flag` (e.g. `--db`), checked before anything connects: a hostile or
 * mistyped name is an InvalidInput failure naming the flag and the rule (exit code 2), never a
 * connection attempt, a started workflow or an empty listing.
 */
export function databaseName(flag: string, name: string): string {
  try {
    assertDatabaseName(name, flag);
    return name;
  } catch (err) {
    if (err instanceof InputError) throw failure(FailureType.InvalidInput, err.message);
    throw err;
  }
}

/** `--database`, default PGDATABASE, checked before anything connects. */
export function databaseOption(config: Config, database: string | undefined): string {
  return databaseName('--database', database ?? config.pg.database);
}

/**
 * A number option, checked before anything connects: commander hands strings, and `Number('')`
 * would be 0. `problem` returns why a number is not acceptable (range, integer), or undefined.
 */
export function numberOption(
  flag: string,
  text: string,
  problem: (n: number) => string | undefined = () => undefined,
): number {
  const n = text.trim() === '' ? NaN : Number(text);
  const why = Number.isFinite(n) ? problem(n) : 'is not a number';
  if (why) throw failure(FailureType.InvalidInput, `${flag} ${text}: ${why}`);
  return n;
}
