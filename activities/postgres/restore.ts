import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable, Writable } from 'node:stream';
import { CancelledFailure, Context } from '@temporalio/activity';
import { type BackupManifest, type BackupVerification, verificationKey } from '../../common/backup';
import { FailureType, failure } from '../../common/failures';
import { preRestoreDatabaseName, type RollbackInput, type RollbackResult } from '../../common/restore';
import { createBackupStore, loadManifest, type BackupStore, type StorageSettings } from '../storage';
import { resolvePgBinaries, STATISTICS_SINCE_MAJOR } from './binaries';
import { pgChildEnv, withPg, serverMajorVersion, type PgConnectionSettings } from './connection';
import { checkStoredArchive } from './archive-check';
import { ArchiveFormatError, fillCustomArchiveOffsets } from './custom-archive';
import { decompress, exitOf, StderrTail } from './dump-pipeline';
import {
  checkedName,
  compareWithManifest,
  databaseFacts,
  dropDerivedDatabase,
  recreateDatabase,
  swapDatabases,
  type SwapResult,
} from './restore-db';
import {
  archiveSource,
  assertDigest,
  decompressToFile,
  extensionsIn,
  resolveBackup,
  type ResolvedBackup,
} from './restore-source';

export interface RestoreDeps {
  readonly pg: PgConnectionSettings;
  readonly storage: StorageSettings;
  /** Temporal Web UI base and namespace, for links in notifications (worker settings, not workflow args). */
  readonly ui: { readonly url: string; readonly namespace: string };
  /** Folder for the seekable temporary archive; default os.tmpdir(). */
  readonly tempDir?: string;
}

const HEARTBEAT_MS = 2000;
/** The shadow is not live until cut-over: its restore session can trade durability for speed. */
const FAST_RESTORE_OPTIONS = '-c synchronous_commit=off -c maintenance_work_mem=256MB';

export interface ArchiveCheck {
  readonly backupId: string;
  readonly sizeBytes: number;
  readonly sha256: string;
  readonly extensions: string[];
  readonly check: string;
}

/** Runs `fn` with heartbeats carrying `progress()`, and a list of kill functions run on cancellation. */
async function withProgress<T>(
  progress: () => Record<string, unknown>,
  fn: (kills: (() => void)[]) => Promise<T>,
): Promise<T> {
  const ctx = Context.current();
  const kills: (() => void)[] = [];
  const onCancel = () => kills.forEach((k) => k());
  ctx.cancellationSignal.addEventListener('abort', onCancel);
  const beat = setInterval(() => ctx.heartbeat(progress()), HEARTBEAT_MS);
  ctx.heartbeat(progress());
  try {
    return await fn(kills);
  } catch (err) {
    if (ctx.cancellationSignal.aborted) throw new CancelledFailure('restore cancelled');
    throw err;
  } finally {
    clearInterval(beat);
    ctx.cancellationSignal.removeEventListener('abort', onCancel);
    onCancel();
  }
}

async function withStore<T>(settings: StorageSettings, fn: (store: BackupStore) => Promise<T>): Promise<T> {
  const store = createBackupStore(settings);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function runTool(
  file: string,
  args: string[],
  env: Record<string, string>,
  stdin: Readable | undefined,
  kills: (() => void)[],
  what: string,
): Promise<void> {
  const child = spawn(file, args, { env, stdio: [stdin ? 'pipe' : 'ignore', 'ignore', 'pipe'] });
  kills.push(() => child.kill('SIGKILL'));
  const tail = new StderrTail();
  tail.attach(child.stderr);
  const fed = stdin
    ? pipeline(stdin, child.stdin as Writable).catch((err: Error) => err)
    : Promise.resolve(undefined);
  const { code, signal } = await exitOf(child);
  const feedError = await fed;
  if (code !== 0) {
    throw failure(
      FailureType.ProcessFailed,
      `${what} ${signal ? `killed by ${signal}` : `exited ${code}`}: ${tail.toString() || 'no error output'}`,
    );
  }
  if (feedError instanceof Error) throw feedError;
}

/**
 * Scratch folders of earlier attempts at restoring into this database: a worker killed mid-restore
 * (SIGKILL, OOM, node drained) never reaches its `finally`, and the decompressed archive it left
 * is as large as the backup. The database name is the run's own (shadow or scratch, stamped with
 * the workflow's start), and this attempt has just recreated that database, so no live attempt
 * still uses them.
 */
async function removeEarlierAttempts(root: string, prefix: string): Promise<void> {
  const entries = await readdir(root).catch(() => [] as string[]);
  for (const entry of entries) {
    // mkdtemp adds exactly six characters: a longer name is another database's whose name starts with this one.
    if (entry.startsWith(prefix) && entry.length === prefix.length + 6)
      await rm(path.join(root, entry), { recursive: true, force: true });
  }
}

export function createRestoreActivities(deps: RestoreDeps) {
  const bins = () =>
    withPg(deps.pg, undefined, async (c) => resolvePgBinaries(deps.pg.binDir, await serverMajorVersion(c)));

  return {
    /** Resolves an id, `latest` or `latest-verified` to a complete backup (short). */
    async resolveRestoreBackup(input: { selector: string; database?: string }): Promise<ResolvedBackup> {
      if (input.database !== undefined) checkedName(input.database);
      return withStore(deps.storage, (store) => resolveBackup(store, input.selector, input.database));
    },

    /** Reads the whole archive once: size and SHA-256 against the manifest, decompression, and the archive's table of contents (the backup's own re-read check). */
    async checkBackupArchive(input: { backupId: string }): Promise<ArchiveCheck> {
      const manifest = await withStore(deps.storage, (store) => loadManifest(store, input.backupId));
      const b = await bins();
      const r = await checkStoredArchive(deps.storage, b.path('pg_restore'), {
        database: manifest.database,
        backupId: manifest.id,
        file: manifest.file,
        format: manifest.format,
        compression: manifest.compression,
        sizeBytes: manifest.sizeBytes,
        sha256: manifest.sha256,
      });
      return {
        backupId: manifest.id,
        sizeBytes: manifest.sizeBytes,
        sha256: manifest.sha256,
        extensions: extensionsIn(r.head),
        check: r.checks,
      };
    },

    async describeDatabase(input: { name: string }): Promise<{ exists: boolean; sizeBytes: number | null }> {
      checkedName(input.name);
      return withPg(deps.pg, undefined, async (c) => {
        const r = await c.query<{ size: string }>(
          'SELECT pg_database_size(oid)::int8 AS size FROM pg_database WHERE datname = $1',
          [input.name],
        );
        return r.rowCount
          ? { exists: true, sizeBytes: Number(r.rows[0]!.size) }
          : { exists: false, sizeBytes: null };
      });
    },

    /**
     * Restores a backup into a fresh `database` (a shadow or scratch name; a leftover of an earlier
     * attempt is dropped first, so a retry after a worker crash starts clean). Custom format:
     * download to a seekable temp file, then pg_restore -j; plain SQL streams into psql.
     */
    async restoreBackupInto(input: {
      backupId: string;
      database: string;
      jobs: number;
    }): Promise<{ bytes: number; durationMs: number; statisticsRestored: boolean }> {
      const started = Date.now();
      checkedName(input.database);
      return withStore(deps.storage, async (store) => {
        const manifest = await loadManifest(store, input.backupId);
        const { b, serverMajor } = await withPg(deps.pg, undefined, async (c) => {
          const major = await serverMajorVersion(c);
          return { serverMajor: major, b: await resolvePgBinaries(deps.pg.binDir, major) };
        });
        // Planner statistics in the archive (pg_dump --statistics) need a PostgreSQL 18+ server to load.
        const statisticsRestored = manifest.statistics === true && serverMajor >= STATISTICS_SINCE_MAJOR;
        await recreateDatabase(deps.pg, input.database);
        const tmpRoot = deps.tempDir ?? os.tmpdir();
        const tmpPrefix = `dbops-restore-${input.database}-`;
        await removeEarlierAttempts(tmpRoot, tmpPrefix);
        const tmp = await mkdtemp(path.join(tmpRoot, tmpPrefix));
        const env = {
          ...pgChildEnv(deps.pg, input.database),
          PGOPTIONS: FAST_RESTORE_OPTIONS,
          PATH: process.env.PATH ?? '',
        };
        let phase = 'downloading';
        try {
          // pg_restore needs a seekable file; a local zstd archive is decompressed by zstd reading it itself.
          const source = await archiveSource(store, manifest, {
            preferFile: manifest.format !== 'plain' && manifest.compression === 'zstd',
          });
          return await withProgress(
            () => ({ phase, bytes: source.digest.bytes, of: manifest.sizeBytes }),
            async (kills) => {
              if (manifest.format === 'plain') {
                phase = 'psql';
                if (!source.stream) throw new Error('a plain dump is restored from a stream');
                const d = decompress(manifest.compression, source.stream);
                kills.push(() => d.kill());
                await runTool(
                  b.path('psql'),
                  ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--no-password', '-f', '-'],
                  env,
                  d.stream,
                  kills,
                  `psql into ${input.database}`,
                );
                await d.done;
                assertDigest(manifest, source.digest);
              } else {
                const file = path.join(tmp, manifest.format === 'custom' ? 'dump.pgcustom' : 'dump.tar');
                await decompressToFile(manifest, source, file, kills, Context.current().cancellationSignal);
                assertDigest(manifest, source.digest);
                let archive = file;
                if (manifest.format === 'custom') {
                  phase = 'indexing';
                  // A format this reader does not know only costs speed: pg_restore finds the blocks itself.
                  try {
                    const offsets = await fillCustomArchiveOffsets(file);
                    Context.current().log.info('custom archive data offsets', {
                      backupId: manifest.id,
                      ...offsets,
                    });
                  } catch (err) {
                    if (!(err instanceof ArchiveFormatError)) throw err;
                    Context.current().log.warn('data offsets not filled in; parallel restore will scan', {
                      backupId: manifest.id,
                      reason: err.message,
                    });
                  }
                }
                if (manifest.format === 'directory') {
                  archive = path.join(tmp, 'dump.pgdir');
                  await mkdir(archive);
                  await runTool(
                    'tar',
                    ['-x', '-f', file, '-C', archive],
                    { PATH: env.PATH },
                    undefined,
                    kills,
                    'tar -x of the directory archive',
                  );
                  await rm(file, { force: true });
                }
                phase = 'pg_restore';
                await runTool(
                  b.path('pg_restore'),
                  [
                    '--no-password',
                    '--exit-on-error',
                    `--jobs=${Math.max(1, input.jobs)}`,
                    ...(b.major >= STATISTICS_SINCE_MAJOR
                      ? [statisticsRestored ? '--statistics' : '--no-statistics']
                      : []),
                    '--dbname',
                    input.database,
                    archive,
                  ],
                  env,
                  undefined,
                  kills,
                  `pg_restore into ${input.database}`,
                );
              }
              return { bytes: source.digest.bytes, durationMs: Date.now() - started, statisticsRestored };
            },
          );
        } finally {
          await rm(tmp, { recursive: true, force: true });
        }
      });
    },

    /** Compares a restored database with its backup's manifest; any difference fails with VerificationFailed. */
    async verifyRestoredDatabase(input: {
      database: string;
      backupId: string;
      extensions?: string[];
    }): Promise<{ tables: number; rows: number; checks: string }> {
      checkedName(input.database);
      const manifest: BackupManifest = await withStore(deps.storage, (store) =>
        loadManifest(store, input.backupId),
      );
      let current = '';
      const facts = await withProgress(
        () => ({ phase: 'counting', table: current }),
        () =>
          withPg(deps.pg, input.database, (c1) =>
            withPg(deps.pg, input.database, (c2) => databaseFacts([c1, c2], (t) => (current = t))),
          ),
      );
      const problems = compareWithManifest(facts, manifest, input.extensions);
      if (problems.length) {
        throw failure(
          FailureType.VerificationFailed,
          `database ${input.database} does not match backup ${input.backupId}: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? `; and ${problems.length - 10} more` : ''}`,
        );
      }
      const leaves = [...facts.tables.values()].filter((t) => t.kind !== 'partitioned');
      return {
        tables: leaves.length,
        rows: leaves.reduce((s, t) => s + t.rows, 0),
        checks: `${facts.tables.size} tables with exact row counts, schema version ${facts.schemaVersion ?? 'none'}, extensions [${facts.extensions.join(', ')}], no invalid indexes`,
      };
    },

    /** Cut-over: target → pre-restore, shadow → target, in one transaction (idempotent). */
    async swapInRestoredDatabase(input: {
      target: string;
      shadow: string;
      preRestore: string;
      workflowId: string;
      keepUntil: string;
    }): Promise<SwapResult> {
      const result = await swapDatabases(deps.pg, {
        target: input.target,
        incoming: input.shadow,
        outgoing: input.preRestore,
        comment: {
          dbops: 'pre_restore',
          target: input.target,
          workflowId: input.workflowId,
          keepUntil: input.keepUntil,
        },
      });
      Context.current().log.info('restore cut-over', { target: input.target, ...result });
      return result;
    },

    /** Swaps the kept pre-restore database back in; the restored one is kept in turn under a new pre-restore name. */
    async rollbackRestore(
      input: RollbackInput & { workflowId: string; now: string },
    ): Promise<RollbackResult> {
      checkedName(input.target);
      checkedName(input.preRestoreDatabase);
      const replacedKeptAs = preRestoreDatabaseName(input.target, new Date(input.now));
      const keepUntil = new Date(Date.parse(input.now) + input.keepDays * 86_400_000).toISOString();
      const r = await swapDatabases(deps.pg, {
        target: input.target,
        incoming: input.preRestoreDatabase,
        outgoing: replacedKeptAs,
        comment: { dbops: 'pre_restore', target: input.target, workflowId: input.workflowId, keepUntil },
      });
      return {
        target: input.target,
        restoredFrom: input.preRestoreDatabase,
        replacedKeptAs,
        cutoverMs: r.cutoverMs,
      };
    },

    /** Drops a shadow or scratch database (only those names); a missing one is fine. */
    async dropRestoreDatabase(input: { name: string }): Promise<{ dropped: boolean }> {
      return { dropped: await dropDerivedDatabase(deps.pg, input.name) };
    },

    /** Fresh planner statistics after a restore (pg_restore does not carry them). */
    async analyzeDatabase(input: { database: string }): Promise<{ durationMs: number }> {
      checkedName(input.database);
      const started = Date.now();
      await withProgress(
        () => ({ phase: 'analyze', elapsedMs: Date.now() - started }),
        () => withPg(deps.pg, input.database, (c) => c.query('ANALYZE')),
      );
      return { durationMs: Date.now() - started };
    },

    /** Writes verification.json beside the backup's manifest (what listing and retention read). */
    async recordBackupVerification(input: {
      backupId: string;
      verification: BackupVerification;
    }): Promise<void> {
      await withStore(deps.storage, async (store) => {
        const manifest = await loadManifest(store, input.backupId);
        await store.replaceJson(verificationKey(manifest.database, manifest.id), input.verification);
      });
    },

    /** Link to a run in the Temporal Web UI (the UI address is a worker setting). */
    async workflowRunUrl(input: { workflowId: string; runId?: string }): Promise<string> {
      const base = `${deps.ui.url}/namespaces/${encodeURIComponent(deps.ui.namespace)}/workflows/${encodeURIComponent(input.workflowId)}`;
      return input.runId ? `${base}/${encodeURIComponent(input.runId)}/history` : base;
    },
  };
}

export type RestoreActivities = ReturnType<typeof createRestoreActivities>;
