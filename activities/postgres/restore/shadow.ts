import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { type BackupManifest } from '../../../common/backup';
import { dumpOptionArgs, dumpOptionsOf } from '../../../common/dump-options';
import { loadManifest, withBackupStore } from '../../storage';
import { STATISTICS_SINCE_MAJOR, type PgBinaries } from '../binaries';
import { pgChildEnv, serverOf } from '../connection';
import { ArchiveFormatError, fillCustomArchiveOffsets } from '../custom-archive';
import { checkedName, dropDerivedDatabase, recreateDatabase } from './databases';
import { FAST_RESTORE_OPTIONS, runTool, serverBinaries, withRestoreProgress, type RestoreDeps } from './run';
import { assertRestoreSpace } from './space';
import { unpackProven } from './unpack';
import { failpoint } from '../../failpoints';

/** The database being written (shadow or scratch): where restoreBackupInto is. */
export function createShadowActivities(deps: RestoreDeps) {
  return {
    /**
     * Restores a backup into a fresh `database` (a shadow or scratch name, marked as this workflow's;
     * a leftover of an earlier attempt is dropped first, so a retry after a worker crash starts clean). The archive is
     * unpacked into the scratch folder and proven first (unpack.ts: digest, decoder, and for plain SQL psql's
     * \restrict lock), then pg_restore -j reads the custom or directory archive, or psql the plain script.
     */
    async restoreBackupInto(input: {
      backupId: string;
      database: string;
      jobs: number;
    }): Promise<{ bytes: number; durationMs: number; statisticsRestored: boolean }> {
      checkedName(input.database);
      return restoreInto(deps, input);
    },

    /** Drops this workflow's shadow or scratch database (only one it marked); a missing one is fine. */
    async dropRestoreDatabase(input: { name: string }): Promise<{ dropped: boolean }> {
      return {
        dropped: await dropDerivedDatabase(serverOf(deps, input.name), input.name, ownWorkflowId()),
      };
    },
  };
}

/** The workflow this activity runs for: what the shadow's or scratch's mark names. */
function ownWorkflowId(): string {
  const id = Context.current().info.workflowExecution?.workflowId;
  if (!id) throw new Error('restore activities run for a workflow: no workflow id in the activity context');
  return id;
}

/** One restore into one database: its tools, their environment, the kill list and where it is. */
interface Restoring {
  readonly database: string;
  readonly bins: PgBinaries;
  readonly env: Record<string, string>;
  readonly kills: (() => void)[];
  /** What the heartbeats report. */
  readonly step: { phase: string };
}

async function restoreInto(
  deps: RestoreDeps,
  input: { backupId: string; database: string; jobs: number },
): Promise<{ bytes: number; durationMs: number; statisticsRestored: boolean }> {
  const started = Date.now();
  return withBackupStore(deps.storage, async (store) => {
    const manifest = await loadManifest(store, input.backupId);
    // A scratch database lives on the verification server when DBOPS_VERIFY_PG* configures one.
    const pg = serverOf(deps, input.database);
    const { bins, serverMajor } = await serverBinaries(pg);
    // Planner statistics in the archive (pg_dump --statistics) need a PostgreSQL 18+ server to load.
    const statisticsRestored = manifest.statistics === true && serverMajor >= STATISTICS_SINCE_MAJOR;
    await recreateDatabase(pg, input.database, ownWorkflowId());
    const tmp = await scratchFolder(deps.tempDir ?? os.tmpdir(), input.database);
    const env = {
      ...pgChildEnv(pg, input.database),
      PGOPTIONS: FAST_RESTORE_OPTIONS,
      PATH: process.env.PATH ?? '',
    };
    const step = { phase: 'downloading' };
    try {
      // Checked again now that an earlier attempt's leftovers are gone (database and scratch files):
      // the approval wait may have used the space the plan found.
      await assertRestoreSpace(deps, manifest, input.database);
      // Where a drill fills the scratch folder after the check (another process taking the space).
      await failpoint('restore.before-decompress');
      const read = { bytes: 0 };
      return await withRestoreProgress(
        () => ({ phase: step.phase, bytes: read.bytes, of: manifest.sizeBytes }),
        async (kills) => {
          const r: Restoring = { database: input.database, bins, env, kills, step };
          const file = path.join(tmp, UNPACKED[manifest.format]);
          // Nothing reads the archive before this proves it: no byte reaches psql or pg_restore unproven.
          await unpackProven(
            store,
            manifest,
            file,
            kills,
            read,
            Context.current().cancellationSignal,
            deps.storage.age,
          );
          if (manifest.format === 'plain') await psqlFromFile(r, file);
          else await pgRestoreFromFile(r, manifest, file, tmp, input.jobs, statisticsRestored);
          return { bytes: read.bytes, durationMs: Date.now() - started, statisticsRestored };
        },
      );
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
}

/** The unpacked archive's name in the scratch folder. */
const UNPACKED: Record<BackupManifest['format'], string> = {
  custom: 'dump.pgcustom',
  directory: 'dump.tar',
  plain: 'dump.sql',
};

/**
 * A proven plain SQL dump into psql, from the local file: -X skips any psqlrc, ON_ERROR_STOP ends
 * at the first error, and the script's own \restrict line locks out backslash commands.
 */
async function psqlFromFile(r: Restoring, file: string): Promise<void> {
  r.step.phase = 'psql';
  await runTool(
    r.bins.path('psql'),
    ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--no-password', '-f', file],
    r.env,
    undefined,
    r.kills,
    `psql into ${r.database}`,
  );
}

/** Custom and directory archives, unpacked and proven: offsets filled in or tar extracted, then pg_restore -j. */
async function pgRestoreFromFile(
  r: Restoring,
  manifest: BackupManifest,
  file: string,
  tmp: string,
  jobs: number,
  statisticsRestored: boolean,
): Promise<void> {
  let archive = file;
  if (manifest.format === 'custom') {
    r.step.phase = 'indexing';
    await fillOffsets(file, manifest.id);
  }
  if (manifest.format === 'directory') {
    archive = path.join(tmp, 'dump.pgdir');
    await mkdir(archive);
    await runTool(
      'tar',
      ['-x', '-f', file, '-C', archive],
      { PATH: r.env.PATH ?? '' },
      undefined,
      r.kills,
      'tar -x of the directory archive',
    );
    await rm(file, { force: true });
  }
  r.step.phase = 'pg_restore';
  await runTool(
    r.bins.path('pg_restore'),
    [
      '--no-password',
      '--exit-on-error',
      `--jobs=${Math.max(1, jobs)}`,
      // A backup dumped without owners or grants restores without them: its archive still names
      // the owners (pg_dump ignores --no-owner for archives), and their roles may not exist here.
      // A plain dump has no such statements to skip. A backup with owners restores them, and
      // fails (--exit-on-error) where a role is missing.
      ...dumpOptionArgs(dumpOptionsOf(manifest)),
      ...(r.bins.major >= STATISTICS_SINCE_MAJOR
        ? [statisticsRestored ? '--statistics' : '--no-statistics']
        : []),
      '--dbname',
      r.database,
      archive,
    ],
    r.env,
    undefined,
    r.kills,
    `pg_restore into ${r.database}`,
  );
}

/** Data offsets a piped custom archive lacks, so pg_restore -j seeks instead of scanning. */
async function fillOffsets(file: string, backupId: string): Promise<void> {
  // A format this reader does not know only costs speed: pg_restore finds the blocks itself.
  try {
    const offsets = await fillCustomArchiveOffsets(file);
    Context.current().log.info('custom archive data offsets', { backupId, ...offsets });
  } catch (err) {
    if (!(err instanceof ArchiveFormatError)) throw err;
    Context.current().log.warn('data offsets not filled in; parallel restore will scan', {
      backupId,
      reason: err.message,
    });
  }
}

/**
 * A fresh scratch folder for restoring into `database`, after removing those of earlier attempts:
 * a worker killed mid-restore (SIGKILL, OOM, node drained) never reaches its `finally`, and the
 * decompressed archive it left is as large as the backup. The database name is the run's own
 * (shadow or scratch, stamped with the workflow's start), and this attempt has just recreated that
 * database, so no live attempt still uses them.
 */
async function scratchFolder(root: string, database: string): Promise<string> {
  const prefix = `dbops-restore-${database}-`;
  const entries = await readdir(root).catch(() => [] as string[]);
  for (const entry of entries) {
    // mkdtemp adds exactly six characters: a longer name is another database's whose name starts with this one.
    if (entry.startsWith(prefix) && entry.length === prefix.length + 6)
      await rm(path.join(root, entry), { recursive: true, force: true });
  }
  return mkdtemp(path.join(root, prefix));
}
