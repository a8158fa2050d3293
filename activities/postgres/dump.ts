import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { Context, CancelledFailure } from '@temporalio/activity';
import type { Client } from 'pg';
import {
  type BackupCompression,
  type BackupFormat,
  type TableRowCount,
  type BackupInputError,
  backupFileKey,
  dumpFileName,
  parseBackupId,
} from '../../common/backup';
import { FailureType, failure } from '../../common/failures';
import { createBackupStore } from '../storage';
import type { StorageSettings } from '../storage/types';
import { resolvePgBinaries, STATISTICS_SINCE_MAJOR, type PgBinaries } from './binaries';
import { pgChildEnv, pgClientConfig, quoteIdent, type PgConnectionSettings } from './connection';
import { checkStoredArchive, type ArchiveCheckInput } from './archive-check';
import { compress, exitOf, gateOnSuccess, HashTap, StderrTail } from './dump-pipeline';
import { Client as PgClient } from 'pg';

export interface DumpDeps {
  readonly pg: PgConnectionSettings;
  readonly storage: StorageSettings;
  /** Folder for the seekable temporary archive (custom/directory formats); default os.tmpdir(). */
  readonly tempDir?: string;
  /** Parallel jobs for the directory format. */
  readonly directoryJobs?: number;
}

export interface DumpInput {
  readonly database: string;
  readonly backupId: string;
  readonly format: BackupFormat;
  readonly compression: BackupCompression;
}

export interface DumpResult {
  readonly file: string;
  readonly location: string;
  readonly sizeBytes: number;
  readonly rawBytes: number;
  readonly sha256: string;
  readonly serverVersion: string;
  readonly pgDumpVersion: string;
  readonly schemaVersion: string | null;
  /** pg_dump wrote the planner statistics too (PostgreSQL 18+). */
  readonly statistics: boolean;
  readonly tables: TableRowCount[];
  readonly startedAt: string;
  readonly finishedAt: string;
}

const HEARTBEAT_MS = 3000;

/** Tables whose data pg_dump writes: ordinary and partitioned tables outside system schemas and extensions. */
const TABLES_SQL = `
  SELECT n.nspname AS schema, c.relname AS table, c.relkind::text AS relkind, c.relispartition AS ispartition, c.oid::int8 AS oid
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
  ORDER BY 1, 2`;

/**
 * Exact row counts in the snapshot of `client`'s transaction. Leaf tables are counted; a
 * partitioned parent gets the sum of its leaf partitions (= `count(*)` on the parent) without
 * scanning the data twice.
 */
async function countRows(client: Client): Promise<TableRowCount[]> {
  const tables = (
    await client.query<{ schema: string; table: string; relkind: string; ispartition: boolean; oid: string }>(
      TABLES_SQL,
    )
  ).rows;
  const leafCounts = new Map<string, number>();
  const out: TableRowCount[] = [];
  for (const t of tables.filter((x) => x.relkind === 'r')) {
    const r = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${quoteIdent(t.schema)}.${quoteIdent(t.table)}`,
    );
    const rows = Number(r.rows[0]!.n);
    leafCounts.set(t.oid, rows);
    out.push({ schema: t.schema, table: t.table, kind: t.ispartition ? 'partition' : 'table', rows });
  }
  for (const t of tables.filter((x) => x.relkind === 'p')) {
    const leaves = await client.query<{ oid: string }>(
      'SELECT relid::oid::int8 AS oid FROM pg_partition_tree($1::oid) WHERE isleaf',
      [t.oid],
    );
    const rows = leaves.rows.reduce((sum, l) => sum + (leafCounts.get(l.oid) ?? 0), 0);
    out.push({ schema: t.schema, table: t.table, kind: 'partitioned', rows });
  }
  return out.sort((a, b) => (`${a.schema}.${a.table}` < `${b.schema}.${b.table}` ? -1 : 1));
}

async function schemaVersion(client: Client): Promise<string | null> {
  const exists = await client.query<{ t: string | null }>(
    "SELECT to_regclass('flyway_schema_history')::text AS t",
  );
  if (!exists.rows[0]?.t) return null;
  const r = await client.query<{ version: string }>(
    'SELECT version FROM flyway_schema_history WHERE success AND version IS NOT NULL ORDER BY installed_rank DESC LIMIT 1',
  );
  return r.rows[0]?.version ?? null;
}

function pgDumpArgs(
  format: BackupFormat,
  snapshot: string,
  target: string | undefined,
  jobs: number,
  statistics: boolean,
): string[] {
  const args = [`--format=${format}`, `--snapshot=${snapshot}`, '--no-password'];
  // Statistics restore in milliseconds; without them the restored database needs a full ANALYZE.
  if (statistics) args.push('--statistics');
  if (format !== 'plain') args.push('--compress=0'); // compression runs outside pg_dump (zstd/gzip)
  if (format === 'directory') args.push(`--jobs=${jobs}`);
  if (target) args.push(`--file=${target}`);
  return args;
}

/** Opens the snapshot transaction, or fails naming the database. */
async function openSnapshot(deps: DumpDeps, database: string): Promise<PgClient> {
  const client = new PgClient(pgClientConfig(deps.pg, database, 'dbops-backup'));
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    const e = err as { code?: string; message?: string };
    if (e.code === '3D000') {
      throw failure(
        FailureType.NotFound,
        `database ${database} does not exist on ${deps.pg.host}:${deps.pg.port}: check the name (DBOPS_DATABASES or --db)`,
      );
    }
    throw failure(
      FailureType.Unavailable,
      `cannot connect to database ${database} on ${deps.pg.host}:${deps.pg.port}: ${e.message}`,
    );
  }
  return client;
}

/** The dump activities; they run on the `<taskQueue>-dumps` worker, which limits how many run at once. */
export function createDumpActivities(deps: DumpDeps) {
  return {
    /**
     * Dumps `database` in one snapshot, compresses, hashes and streams into the store under the
     * backup's folder. Idempotent: a retry overwrites the same key; nothing is visible on failure.
     */
    async dumpDatabase(input: DumpInput): Promise<DumpResult> {
      const ctx = Context.current();
      let parsed;
      try {
        parsed = parseBackupId(input.backupId);
      } catch (err) {
        throw failure(FailureType.InvalidInput, (err as BackupInputError).message);
      }
      if (parsed.database !== input.database) {
        throw failure(
          FailureType.InvalidInput,
          `backup id ${input.backupId} does not belong to database ${input.database}`,
        );
      }
      const startedAt = new Date();
      const file = dumpFileName(input.format, input.compression);
      const key = backupFileKey(input.database, input.backupId, file);
      const store = createBackupStore(deps.storage);
      const client = await openSnapshot(deps, input.database);
      const tmp = await mkdtemp(path.join(deps.tempDir ?? os.tmpdir(), `dbops-dump-${input.backupId}-`));
      let phase = 'dumping';
      let progressBytes = 0;
      const beat = setInterval(() => {
        ctx.heartbeat({ phase, bytes: progressBytes });
      }, HEARTBEAT_MS);
      const kills: (() => void)[] = [];
      const onCancel = () => kills.forEach((k) => k());
      ctx.cancellationSignal.addEventListener('abort', onCancel);
      try {
        const version = await client.query<{ server_version: string; server_version_num: string }>(
          "SELECT current_setting('server_version') AS server_version, current_setting('server_version_num') AS server_version_num",
        );
        const serverVersion = version.rows[0]!.server_version;
        const bins = await resolvePgBinaries(
          deps.pg.binDir,
          Math.floor(Number(version.rows[0]!.server_version_num) / 10000),
        );
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const snapshot = (await client.query<{ s: string }>('SELECT pg_export_snapshot() AS s')).rows[0]!.s;
        const schema = await schemaVersion(client);
        // Counting runs in the exporting transaction while pg_dump works in the same snapshot.
        const counting = countRows(client);
        counting.catch(() => undefined);

        // execa is ESM-only: loaded lazily so this CommonJS module can be require()d by the worker.
        const withStatistics = bins.major >= STATISTICS_SINCE_MAJOR;
        const { execa } = await import('execa');
        const env = pgChildEnv(deps.pg, input.database);
        const pgDumpTail = new StderrTail();
        const startDump = (target: string | undefined, stdout: 'ignore' | NodeJS.WritableStream) => {
          const child = execa(
            bins.path('pg_dump'),
            pgDumpArgs(input.format, snapshot, target, deps.directoryJobs ?? 2, withStatistics),
            {
              env,
              extendEnv: false,
              stdin: 'ignore',
              stdout: stdout as 'ignore',
              stderr: 'pipe',
              buffer: false,
              reject: false,
            },
          );
          kills.push(() => void child.kill('SIGKILL'));
          pgDumpTail.attach(child.stderr, (line) => {
            ctx.log.warn('pg_dump', { database: input.database, line });
          });
          return child;
        };
        const pgDumpFailed = (code: number | undefined | null, signal?: string) =>
          ctx.cancellationSignal.aborted
            ? new CancelledFailure('backup cancelled: pg_dump killed')
            : failure(
                FailureType.ProcessFailed,
                `pg_dump ${signal ? `killed by ${signal}` : `exited ${code}`} for database ${input.database}: ${pgDumpTail.toString() || 'no error output'}`,
              );

        let source: Readable;
        let compressorDone: Promise<void>;
        let rawBytes = 0;
        let pgDumpExit: Promise<void> = Promise.resolve();
        if (input.format !== 'directory') {
          // plain and custom stream pg_dump's stdout through the compressor into the store: written once.
          // A custom archive written to a pipe has no data offsets; restore fills them in before
          // a parallel pg_restore (custom-archive.ts), so nothing is lost by not writing a file here.
          const pgDump = startDump(undefined, 'pipe' as never);
          pgDumpExit = pgDump.then((r) => {
            if (r.exitCode !== 0) throw pgDumpFailed(r.exitCode, r.signal);
          });
          pgDumpExit.catch(() => undefined);
          const handOver = input.compression === 'zstd';
          const raw = handOver ? undefined : new HashTap();
          const stdout = pgDump.stdout as unknown as Readable;
          const c = compress(input.compression, raw ? stdout.pipe(raw) : stdout, { handOver });
          kills.push(() => c.kill());
          compressorDone = c.done;
          source = c.stream;
          compressorDone.catch(() => undefined);
          const hashed = new HashTap();
          phase = 'dumping+uploading';
          const counter = setInterval(() => (progressBytes = hashed.bytes), 500);
          try {
            const gate = gateOnSuccess(async () => {
              await pgDumpExit;
              await compressorDone;
            });
            await store.put(key, source.pipe(hashed).pipe(gate), { signal: ctx.cancellationSignal });
          } catch (err) {
            await pgDumpExit; // a pg_dump failure explains the upload failure better
            throw err;
          } finally {
            clearInterval(counter);
          }
          // zstd reads pg_dump directly, so the uncompressed size comes from the re-read check.
          return await finish(hashed, raw?.bytes ?? 0);
        }

        // directory: pg_dump -j writes a folder, which one tar stream carries into the store.
        const target = path.join(tmp, 'dump.pgdir');
        const pgDump = await startDump(target, 'ignore');
        if (pgDump.exitCode !== 0) throw pgDumpFailed(pgDump.exitCode, pgDump.signal);
        phase = 'compressing+uploading';
        const tar = spawn('tar', ['-C', target, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
        kills.push(() => tar.kill('SIGKILL'));
        const tarTail = new StderrTail();
        tarTail.attach(tar.stderr);
        const rawTap = new HashTap();
        const tarStream = tar.stdout.pipe(rawTap);
        pgDumpExit = exitOf(tar).then(({ code }) => {
          rawBytes = rawTap.bytes;
          if (code !== 0)
            throw failure(
              FailureType.ProcessFailed,
              `tar of the directory archive exited ${code}: ${tarTail.toString()}`,
            );
        });
        pgDumpExit.catch(() => undefined);
        const c = compress(input.compression, tarStream);
        kills.push(() => c.kill());
        c.done.catch(() => undefined);
        const hashed = new HashTap();
        const counter = setInterval(() => (progressBytes = hashed.bytes), 500);
        try {
          const gate = gateOnSuccess(async () => {
            await pgDumpExit;
            await c.done;
          });
          await store.put(key, c.stream.pipe(hashed).pipe(gate), { signal: ctx.cancellationSignal });
        } finally {
          clearInterval(counter);
        }
        return await finish(hashed, rawBytes);

        async function finish(hashed: HashTap, raw: number): Promise<DumpResult> {
          const tables = await counting;
          await client.query('COMMIT');
          return {
            file,
            location: store.describe(key),
            sizeBytes: hashed.bytes,
            rawBytes: raw,
            sha256: hashed.digest(),
            serverVersion,
            pgDumpVersion: bins.version,
            schemaVersion: schema,
            statistics: withStatistics,
            tables,
            startedAt: startedAt.toISOString(),
            finishedAt: new Date().toISOString(),
          };
        }
      } catch (err) {
        if (ctx.cancellationSignal.aborted) throw new CancelledFailure('backup cancelled');
        throw err;
      } finally {
        clearInterval(beat);
        ctx.cancellationSignal.removeEventListener('abort', onCancel);
        onCancel();
        await client.end().catch(() => undefined);
        await rm(tmp, { recursive: true, force: true });
        await store.close();
      }
    },

    /** Re-reads the stored archive and proves it intact (size, SHA-256, decodable to the end, readable by its tool). */
    async verifyBackupArchive(
      input: ArchiveCheckInput & { pgDumpVersion: string },
    ): Promise<{ checks: string; rawBytes: number }> {
      // pg_restore must be at least as new as the pg_dump that wrote the archive.
      const bins = await resolvePgBinaries(deps.pg.binDir, parseInt(input.pgDumpVersion, 10));
      const { checks, rawBytes } = await checkStoredArchive(deps.storage, bins.path('pg_restore'), input);
      return { checks, rawBytes };
    },
  };
}

export type DumpActivities = ReturnType<typeof createDumpActivities>;
export type { PgBinaries };
