import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { failure, FailureType } from '../../../common/failures';
import { flywayChecksum } from './checksum';
import { parseProperties } from './config-file';
import { compareVersions, parseVersion, type MigrationVersion } from './version';

/** A versioned SQL migration found on disk. */
export interface ResolvedMigration {
  readonly version: MigrationVersion;
  /** As Flyway stores it: the name's description with `_` turned into spaces. */
  readonly description: string;
  /** The file name, as in flyway_schema_history.script. */
  readonly script: string;
  readonly file: string;
  readonly checksum: number;
  readonly sql: string;
  readonly executeInTransaction: boolean;
}

const NAME = /^V([^_]+(?:_[^_]+)*?)__(.+)\.sql$/;

/** Parses `V<version>__<description>.sql`; undefined when the name does not follow the pattern. */
export function parseMigrationName(
  fileName: string,
): { version: MigrationVersion; description: string } | undefined {
  const m = NAME.exec(fileName);
  if (!m) return undefined;
  const version = parseVersion(m[1]!);
  const description = m[2]!.replace(/_/g, ' ').trim();
  if (!version || !description) return undefined;
  return { version, description };
}

function listSqlFiles(dir: string): string[] {
  if (!existsSync(dir)) {
    throw failure(
      FailureType.Misconfigured,
      `migration location ${dir} does not exist: fix flyway.locations or DBOPS_MIGRATIONS_DIR`,
    );
  }
  const out: string[] = [];
  for (const entry of readdirSync(dir).sort()) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) out.push(...listSqlFiles(full));
    else if (entry.endsWith('.sql')) out.push(full);
  }
  return out;
}

function readScriptConfig(file: string): boolean {
  const conf = `${file}.conf`;
  if (!existsSync(conf)) return true;
  const props = parseProperties(readFileSync(conf, 'utf8'));
  for (const key of props.keys()) {
    if (key !== 'executeInTransaction') {
      throw failure(
        FailureType.MigrationInvalid,
        `${conf}: unsupported setting "${key}" (dbops supports executeInTransaction)`,
      );
    }
  }
  const value = props.get('executeInTransaction')?.toLowerCase();
  if (value === undefined || value === 'true') return true;
  if (value === 'false') return false;
  throw failure(
    FailureType.MigrationInvalid,
    `${conf}: executeInTransaction must be true or false, got "${value}"`,
  );
}

/**
 * Every versioned migration in the locations, sorted by version. Bad names and duplicate
 * versions are errors naming the files (Flyway's validateMigrationNaming).
 */
export function resolveMigrations(locations: readonly string[]): ResolvedMigration[] {
  const migrations: ResolvedMigration[] = [];
  for (const file of locations.flatMap(listSqlFiles)) {
    const script = path.basename(file);
    const parsed = parseMigrationName(script);
    if (!parsed) {
      throw failure(
        FailureType.MigrationInvalid,
        `migration file ${file} has an invalid name: expected V<version>__<description>.sql, e.g. V006__add_orders.sql (version digits separated by . or _, two underscores)`,
      );
    }
    const content = readFileSync(file);
    migrations.push({
      ...parsed,
      script,
      file,
      checksum: flywayChecksum(content),
      sql: content.toString('utf8').replace(/^\uFEFF/, ''),
      executeInTransaction: readScriptConfig(file),
    });
  }
  migrations.sort((a, b) => compareVersions(a.version, b.version));
  for (let i = 1; i < migrations.length; i++) {
    if (compareVersions(migrations[i - 1]!.version, migrations[i]!.version) === 0) {
      throw failure(
        FailureType.MigrationInvalid,
        `two migrations have version ${migrations[i]!.version.text}: ${migrations[i - 1]!.file} and ${migrations[i]!.file}; renumber one`,
      );
    }
  }
  return migrations;
}
