import { Client, type ClientConfig } from 'pg';
import { parseDerivedDatabaseName } from '../../common/restore';
import { explainTlsError, pgDriverTls, pgSslEnv, type PgSslFiles } from './tls';

/** How to reach PostgreSQL. The password is here only for child-process env and `pg`; never argv, never a workflow argument. */
export interface PgConnectionSettings {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** The maintenance/default database (PGDATABASE). Operations name their own database. */
  readonly database: string;
  readonly sslmode: string | undefined;
  /** PGSSLROOTCERT, PGSSLCERT, PGSSLKEY, PGSSLCRL: read by `pg` here and by libpq in the child tools. */
  readonly ssl: PgSslFiles;
  readonly passfile: string | undefined;
  readonly password: string | undefined;
  /** Folder holding pg_dump/pg_restore/psql of the server's major version (DBOPS_PG_BIN_DIR). */
  readonly binDir: string | undefined;
}

/** The servers dbops works with: the main one (PG*) and, when DBOPS_VERIFY_PG* names it, the verification server. */
export interface PgServers {
  readonly pg: PgConnectionSettings;
  readonly verifyPg?: PgConnectionSettings;
}

/**
 * The server that holds `database`: a verification's scratch database (`<db>__verify_<time>`) lives
 * on the verification server when one is configured, so a test restore never lands on production;
 * every other database (targets, shadows, kept copies) on the main server. Deciding by the name
 * means no caller can create, read or drop a scratch database on the wrong server.
 */
export function serverOf(servers: PgServers, database: string): PgConnectionSettings {
  return servers.verifyPg !== undefined && parseDerivedDatabaseName(database)?.kind === 'verify'
    ? servers.verifyPg
    : servers.pg;
}

/** `host:port` for messages. */
export function describeServer(settings: PgConnectionSettings): string {
  return `${settings.host}:${settings.port}`;
}

/** Options for `pg` connecting to `database` (default: the configured one). */
export function pgClientConfig(
  settings: PgConnectionSettings,
  database = settings.database,
  appName = 'dbops',
): ClientConfig {
  const ssl = pgDriverTls(settings.sslmode, settings.ssl);
  return {
    host: settings.host,
    port: settings.port,
    user: settings.user,
    database,
    password: settings.password,
    ssl,
    application_name: appName,
    connectionTimeoutMillis: 10_000,
  };
}

/**
 * Environment for pg_dump/pg_restore/psql: libpq variables, so nothing secret is in argv. The whole
 * environment (extendEnv: false): the TLS files must be here, or the tools would not check what `pg` checks.
 */
export function pgChildEnv(
  settings: PgConnectionSettings,
  database = settings.database,
): Record<string, string> {
  const env: Record<string, string> = {
    PGHOST: settings.host,
    PGPORT: String(settings.port),
    PGUSER: settings.user,
    PGDATABASE: database,
    PGAPPNAME: 'dbops',
    PGCONNECT_TIMEOUT: '10',
  };
  if (settings.password !== undefined) env.PGPASSWORD = settings.password;
  if (settings.passfile !== undefined) env.PGPASSFILE = settings.passfile;
  if (settings.sslmode !== undefined) env.PGSSLMODE = settings.sslmode;
  return { ...env, ...pgSslEnv(settings.ssl) };
}

/** Connects, runs `fn`, always disconnects. */
export async function withPg<T>(
  settings: PgConnectionSettings,
  database: string | undefined,
  fn: (client: Client) => Promise<T>,
): Promise<T> {
  const client = new Client(pgClientConfig(settings, database));
  client.on('error', () => {
    /* a dropped connection surfaces on the pending query; don't crash the worker */
  });
  try {
    await client.connect();
  } catch (err) {
    throw explainTlsError(err, settings.sslmode, settings.ssl, describeServer(settings));
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Quotes an identifier the way PostgreSQL's quote_ident does, for the rare DDL that cannot take parameters. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Server major version, e.g. 18 for 18.6. */
export async function serverMajorVersion(client: Client): Promise<number> {
  const r = await client.query<{ server_version_num: string }>('SHOW server_version_num');
  return Math.floor(Number(r.rows[0]?.server_version_num ?? 0) / 10000);
}
