import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { FailureType, failure } from '../../../common/failures';
import { isSystemIdentifier } from '../../../common/pitr';
import { resolvePgBinaries, toolEnv } from '../binaries';
import { Client } from 'pg';
import { describeServer, pgClientConfig, type PgConnectionSettings, withPg } from '../connection';
import { explainTlsError } from '../tls';

/** `pg_basebackup --incremental` and WAL summaries exist since PostgreSQL 17. */
export const INCREMENTAL_SINCE_MAJOR = 17;

/** The configured server as a base backup sees it. */
export interface ClusterInfo {
  /** pg_control_system(): changes only with a new initdb. */
  readonly systemIdentifier: string;
  readonly serverVersion: string;
  readonly major: number;
  /** summarize_wal (PostgreSQL 17+; false before): incremental backups need it on. */
  readonly summarizeWal: boolean;
}

export async function inspectCluster(pg: PgConnectionSettings): Promise<ClusterInfo> {
  return withPg(pg, undefined, async (client) => {
    const r = await client.query<{ sysid: string; version: string; num: string; summarize: string | null }>(
      `SELECT system_identifier::text AS sysid, current_setting('server_version') AS version,
              current_setting('server_version_num') AS num, current_setting('summarize_wal', true) AS summarize
         FROM pg_control_system()`,
    );
    const row = r.rows[0]!;
    if (!isSystemIdentifier(row.sysid)) throw new Error(`pg_control_system() returned ${row.sysid}`);
    return {
      systemIdentifier: row.sysid,
      serverVersion: row.version,
      major: Math.floor(Number(row.num) / 10000),
      summarizeWal: row.summarize === 'on',
    };
  });
}

/** Why the server cannot take an incremental backup (version, summarize_wal), with the fix; undefined: it can. */
export function incrementalProblem(pg: PgConnectionSettings, cluster: ClusterInfo): string | undefined {
  const where = `PostgreSQL ${cluster.serverVersion} at ${describeServer(pg)}`;
  if (cluster.major < INCREMENTAL_SINCE_MAJOR)
    return `${where} cannot take incremental base backups (PostgreSQL ${INCREMENTAL_SINCE_MAJOR}+ can): take full ones ("dbops basebackup")`;
  if (!cluster.summarizeWal)
    return `${where} runs with summarize_wal = off, and incremental base backups need the WAL summaries it writes: set summarize_wal = on (ALTER SYSTEM SET summarize_wal = on; SELECT pg_reload_conf(); no restart needed), then take a full base backup ("dbops basebackup") before the first incremental one`;
  return undefined;
}

export type BaseBackupTool = 'pg_basebackup' | 'pg_verifybackup';

export interface BaseBackupTools {
  readonly version: string;
  path(tool: BaseBackupTool): string;
}

/**
 * pg_basebackup and pg_verifybackup beside the pg_dump dbops found for the server's major version
 * (DBOPS_PG_BIN_DIR or Debian's folder, binaries.ts), each at least that version.
 */
export async function resolveBaseBackupTools(
  binDir: string | undefined,
  major: number,
): Promise<BaseBackupTools> {
  const bins = await resolvePgBinaries(binDir, major);
  const { execa } = await import('execa');
  let version = '';
  for (const tool of ['pg_basebackup', 'pg_verifybackup'] as const) {
    const file = path.join(bins.dir, tool);
    const found = await access(file, constants.X_OK).then(
      () => execa(file, ['--version'], { timeout: 10_000, env: toolEnv(), extendEnv: false }),
      () => undefined,
    );
    const m = found && /(\d+)(?:\.(\d+))?/.exec(found.stdout);
    if (!m || Number(m[1]) < major)
      throw failure(
        FailureType.Misconfigured,
        `${file} ${m ? `is version ${m[0]}, older than the server (${major})` : 'is missing or does not run'}: set DBOPS_PG_BIN_DIR to the bin folder of PostgreSQL ${major} or newer, with pg_basebackup and pg_verifybackup`,
      );
    version = m[0];
  }
  return { version, path: (tool) => path.join(bins.dir, tool) };
}

/**
 * Keeps the server's WAL from now until `release`, for `pg_basebackup -X fetch`, which collects the
 * backup's WAL only at its end: under a steady write load the server recycles segments meanwhile
 * ("requested WAL segment ... has already been removed", seen on the dev stack while a 2 GB restore
 * benchmark ran). A temporary physical slot, reserved now (before the backup's checkpoint), holds
 * them; it belongs to this session, so a killed worker's slot goes with its connection.
 */
export async function holdWal(
  pg: PgConnectionSettings,
  backupId: string,
): Promise<{ release(): Promise<void> }> {
  const client = new Client(pgClientConfig(pg, undefined, 'dbops basebackup'));
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    throw explainTlsError(err, pg.sslmode, pg.ssl, describeServer(pg));
  }
  // Slot names: lower case, digits and _; the process id keeps a retry's from meeting a dying attempt's.
  const slot = `dbops_basebackup_${backupId.toLowerCase().replace(/[^a-z0-9]/g, '_')}_${process.pid}`;
  try {
    await client.query('SELECT pg_create_physical_replication_slot($1, true, true)', [slot]);
  } catch (err) {
    await client.end().catch(() => undefined);
    throw failure(
      FailureType.Misconfigured,
      `could not reserve the WAL of base backup ${backupId} with a temporary replication slot on ${describeServer(pg)}: ${(err as Error).message}; the user needs the REPLICATION attribute and max_replication_slots a free slot`,
    );
  }
  return {
    async release() {
      await client.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => undefined);
      await client.end().catch(() => undefined);
    },
  };
}
