import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { failure, FailureType } from '../../../common/failures';

/** The parts of flyway.conf that dbops honours. */
export interface FlywaySettings {
  /** Absolute folders holding the migrations. */
  readonly locations: readonly string[];
  readonly table: string;
  /** The first schema holds the history table and is the migrations' search_path head. */
  readonly schemas: readonly string[];
}

/** Parses `key=value` lines (`#`/`!` comments, `\` line continuation) as Java properties files do, simply. */
export function parseProperties(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    if (!line || line.startsWith('#') || line.startsWith('!')) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + lines[++i]!.trim();
    const m = /^([^=:\s]+)\s*[=:]?\s*(.*)$/.exec(line);
    if (m) out.set(m[1]!, m[2]!.trim());
  }
  return out;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

/**
 * Reads `<dir>/flyway.conf` when present. `filesystem:` locations are relative to the conf file's
 * folder; without a conf file the folder itself is the only location.
 */
export function readFlywaySettings(dir: string): FlywaySettings {
  const confPath = path.join(dir, 'flyway.conf');
  if (!existsSync(dir)) {
    throw failure(
      FailureType.Misconfigured,
      `migrations folder ${dir} does not exist: set DBOPS_MIGRATIONS_DIR`,
    );
  }
  if (!existsSync(confPath))
    return { locations: [path.resolve(dir)], table: 'flyway_schema_history', schemas: ['public'] };
  const props = parseProperties(readFileSync(confPath, 'utf8'));
  const locations = (props.get('flyway.locations') ?? 'filesystem:.')
    .split(',')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((loc) => {
      if (loc.startsWith('classpath:')) {
        throw failure(
          FailureType.Misconfigured,
          `${confPath}: location ${loc} is a Java classpath; dbops reads only filesystem: locations`,
        );
      }
      return path.resolve(dir, loc.replace(/^filesystem:/, ''));
    });
  const table = props.get('flyway.table') ?? 'flyway_schema_history';
  const schemas = (props.get('flyway.schemas') ?? props.get('flyway.defaultSchema') ?? 'public')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const name of [table, ...schemas]) {
    if (!IDENT.test(name)) {
      throw failure(
        FailureType.Misconfigured,
        `${confPath}: "${name}" is not a plain PostgreSQL name (letters, digits, _ $)`,
      );
    }
  }
  return { locations, table, schemas: schemas.length ? schemas : ['public'] };
}
