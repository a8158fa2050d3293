import { Client } from 'pg';
import { failure, FailureType } from '../../../common/failures';
import { pgClientConfig, quoteIdent, type PgConnectionSettings } from '../connection';

/** Opens a connection to `database`, turning "does not exist" and refusals into clear failures. */
export async function openSession(
  pg: PgConnectionSettings,
  database: string,
  appName: string,
): Promise<Client> {
  const client = new Client(pgClientConfig(pg, database, appName));
  client.on('error', () => {
    /* surfaces on the pending query */
  });
  try {
    await client.connect();
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === '3D000') {
      throw failure(
        FailureType.NotFound,
        `database ${database} does not exist on ${pg.host}:${pg.port}: create it first`,
      );
    }
    throw failure(
      FailureType.Unavailable,
      `cannot connect to database ${database} on ${pg.host}:${pg.port}: ${(err as Error).message}`,
    );
  }
  return client;
}

/** lock_timeout / statement_timeout for migration sessions, and the target schema first on search_path. */
export async function prepareMigrationSession(
  client: Client,
  opts: { lockTimeoutMs: number; statementTimeoutMs: number; schema: string },
): Promise<void> {
  await client.query(`SET lock_timeout = ${Math.max(0, Math.round(opts.lockTimeoutMs))}`);
  await client.query(`SET statement_timeout = ${Math.max(0, Math.round(opts.statementTimeoutMs))}`);
  await client.query(
    `SELECT set_config('search_path', $1 || ', ' || current_setting('search_path'), false)`,
    [quoteIdent(opts.schema)],
  );
}

/** "ERROR text (line N of FILE)" from a PostgreSQL error's character position in the script. */
export function describeSqlError(err: unknown, sql: string, file: string, offset = 0): string {
  const e = err as { message?: string; position?: string; code?: string };
  const pos = e.position ? Number(e.position) + offset : undefined;
  const line = pos ? sql.slice(0, pos).split('\n').length : undefined;
  return `${e.message ?? String(err)}${e.code ? ` [SQLSTATE ${e.code}]` : ''}${line ? ` at line ${line} of ${file}` : ` in ${file}`}`;
}
