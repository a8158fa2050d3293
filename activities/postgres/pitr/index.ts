import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { rm } from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import type { Client as PgClient } from 'pg';
import type { BaseBackupManifest } from '../../../common/basebackup';
import { parseDumpOptions } from '../../../common/dump-options';
import { FailureType, failure } from '../../../common/failures';
import type { RecoveredPoint, RecoveryTarget } from '../../../common/pitr';
import { withBackupStore } from '../../storage';
import { listBaseBackupEntries } from '../basebackup/catalog';
import { inspectCluster } from '../basebackup/cluster';
import { withPg } from '../connection';
import { countRows, schemaVersion } from '../dump/snapshot';
import { compareWithManifest, databaseFacts, recreateDatabase } from '../restore/databases';
import { serverBinaries, withRestoreProgress, type RestoreDeps } from '../restore/run';
import { assembleDataDir } from './assemble';
import { copyIntoShadow } from './copy';
import { assertPostgresCanReach, giveToPostgres, startScratchInstance } from './instance';
import { assertWalCovers, chooseBaseChain } from './resolve';
import { controlSettings, freshFolder, recoverySettings, waitForTarget } from './recover';
import { WalFeed } from './wal-feed';

/** What a point-in-time restore's plan starts from (resolvePointInTime). */
export interface PointInTimeSource {
  readonly systemId: string;
  /** Oldest first: the full backup, then the incremental ones on it. */
  readonly baseBackups: readonly string[];
  readonly baseStoppedAt: string;
  readonly lastSegment: string;
  readonly lastArchivedAt: string;
}

export interface RecoverInput {
  readonly source: PointInTimeSource;
  readonly target: RecoveryTarget;
  readonly database: string;
  readonly shadow: string;
  readonly jobs: number;
  readonly dumpOptions?: unknown;
}

/** One scratch folder per workflow: a retry after a crash finds and removes the earlier attempt's. */
function scratchFor(deps: RestoreDeps, workflowId: string): string {
  const tag = createHash('sha256').update(workflowId).digest('hex').slice(0, 16);
  return path.join(deps.tempDir ?? os.tmpdir(), `dbops-pitr-${tag}`);
}

function ownWorkflowId(): string {
  const id = Context.current().info.workflowExecution?.workflowId;
  if (!id) throw new Error('point-in-time activities run for a workflow');
  return id;
}

async function loadChain(deps: RestoreDeps, source: PointInTimeSource): Promise<BaseBackupManifest[]> {
  return withBackupStore(deps.storage, async (store) => {
    const entries = await listBaseBackupEntries(store, source.systemId);
    return source.baseBackups.map((id) => {
      const m = entries.find((e) => e.id === id)?.manifest;
      if (!m) throw failure(FailureType.NotFound, `base backup ${id} is no longer in the store`);
      return m;
    });
  });
}

/**
 * Steps 1–3 of a point-in-time restore in one activity, so the temporary server never outlives it:
 * assemble the data directory, recover it to the target with WAL from the store, count the
 * database's rows there, and copy it into the shadow. The temporary server and every file are
 * removed whatever happens (a crash's leftovers by the next attempt).
 */
async function recoverIntoShadow(deps: RestoreDeps, input: RecoverInput): Promise<RecoveredPoint> {
  const workflowId = ownWorkflowId();
  const chain = await loadChain(deps, input.source);
  const { bins } = await serverBinaries(deps.pg);
  const dir = await freshFolder(scratchFor(deps, workflowId));
  const step = { phase: 'assembling', bytes: 0, replayLsn: null as string | null };
  const t0 = Date.now();
  const signal = Context.current().cancellationSignal;
  try {
    return await withBackupStore(deps.storage, (store) =>
      withRestoreProgress(
        () => ({ ...step }),
        async (kills) => {
          const data = await assembleDataDir({
            store,
            chain,
            dir,
            pgCombinebackup: path.join(bins.dir, 'pg_combinebackup'),
            kills,
            onProgress: (phase, bytes) => Object.assign(step, { phase, bytes }),
          });
          const feed = new WalFeed(store, input.source.systemId, dir);
          await feed.prepare();
          await giveToPostgres(dir);
          await assertPostgresCanReach(dir, 'DBOPS_SCRATCH_DIR');
          const settings = {
            ...(await controlSettings(bins.dir, data)),
            ...recoverySettings(input.target, feed.restoreCommand),
          };
          const t1 = Date.now();
          step.phase = 'recovering';
          const instance = await startScratchInstance({
            binDir: bins.dir,
            dataDir: data,
            logFile: path.join(dir, 'postgres.log'),
            settings,
            user: deps.pg.user,
          });
          kills.push(() => void instance.stop());
          feed.start();
          try {
            const reached = await waitForTarget({
              instance,
              feed,
              target: input.target,
              database: input.database,
              onProgress: (lsn) => (step.replayLsn = lsn),
              signal,
            });
            await feed.stop();
            const counted = await instance.connect(input.database).then(async (c) => {
              try {
                return { tables: await countRows(c), schemaVersion: await schemaVersion(c) };
              } finally {
                await c.end();
              }
            });
            const extensions = (
              await withCopy(instance, input.database, (c) =>
                c.query<{ extname: string }>(
                  "SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1",
                ),
              )
            ).rows.map((r) => r.extname);
            const t2 = Date.now();
            await recreateDatabase(deps.pg, input.shadow, workflowId);
            const copied = await copyIntoShadow({
              bins,
              copy: { port: instance.port, user: deps.pg.user },
              live: deps.pg,
              database: input.database,
              shadow: input.shadow,
              jobs: input.jobs,
              dumpOptions: parseDumpOptions(input.dumpOptions),
              dir: path.join(dir, 'copy'),
              kills,
              step,
            });
            return {
              target: input.target,
              baseBackups: chain.map((b) => b.id),
              ...reached,
              walSegments: feed.current.segmentsFetched,
              walBytes: feed.current.bytesFetched,
              tables: counted.tables,
              rows: counted.tables.filter((t) => t.kind !== 'partitioned').reduce((n, t) => n + t.rows, 0),
              schemaVersion: counted.schemaVersion,
              extensions,
              statisticsRestored: copied.statisticsRestored,
              durationMs: { assemble: t1 - t0, recover: t2 - t1, copy: Date.now() - t2 },
            };
          } finally {
            await feed.stop();
            await instance.stop();
          }
        },
      ),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function withCopy<T>(
  instance: { connect(db: string): Promise<PgClient> },
  database: string,
  fn: (c: PgClient) => Promise<T>,
): Promise<T> {
  const c = await instance.connect(database);
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export function createPointInTimeActivities(deps: RestoreDeps) {
  return {
    /** Plans a point-in-time restore: the base backup chain and the WAL that must cover the target. */
    async resolvePointInTime(input: { target: RecoveryTarget }): Promise<PointInTimeSource> {
      const { target } = input;
      if (target.kind === 'time' && Date.parse(target.time) > Date.now())
        throw failure(FailureType.InvalidInput, `--to-time ${target.time} is in the future`);
      const cluster = await inspectCluster(deps.pg);
      return withBackupStore(deps.storage, async (store) => {
        const chain = chooseBaseChain(await listBaseBackupEntries(store, cluster.systemIdentifier), target);
        const newest = chain.at(-1)!;
        const wal = await assertWalCovers(store, cluster.systemIdentifier, newest, target);
        return {
          systemId: cluster.systemIdentifier,
          baseBackups: chain.map((b) => b.id),
          baseStoppedAt: newest.stoppedAt,
          lastSegment: wal.lastSegment,
          lastArchivedAt: wal.lastArchivedAt,
        };
      });
    },

    recoverIntoShadow: (input: RecoverInput) => recoverIntoShadow(deps, input),

    /** Exact rows of the live database now, for the approver's comparison (0 tables when it does not exist). */
    async countLiveRows(input: {
      database: string;
    }): Promise<{ exists: boolean; tables: number; rows: number }> {
      return withPg(deps.pg, input.database, async (c) => {
        const tables = await countRows(c);
        const rows = tables.filter((t) => t.kind !== 'partitioned').reduce((n, t) => n + t.rows, 0);
        return { exists: true, tables: tables.length, rows };
      }).catch((err: { code?: string }) => {
        if (err.code === '3D000') return { exists: false, tables: 0, rows: 0 };
        throw err;
      });
    },

    /** The shadow against what the recovered copy held: every table's exact rows, schema version, extensions. */
    async verifyPointInTimeShadow(input: {
      shadow: string;
      recovered: Pick<RecoveredPoint, 'tables' | 'schemaVersion' | 'extensions'>;
    }): Promise<{ tables: number; rows: number }> {
      return withPg(deps.pg, input.shadow, async (c) => {
        const facts = await databaseFacts([c]);
        const problems = compareWithManifest(
          facts,
          {
            tables: input.recovered.tables.map((t) => ({ ...t, kind: t.kind as 'table' })),
            schemaVersion: input.recovered.schemaVersion,
          },
          input.recovered.extensions,
        );
        if (problems.length)
          throw failure(
            FailureType.VerificationFailed,
            `the shadow ${input.shadow} does not match the recovered database: ${problems.slice(0, 10).join('; ')}`,
          );
        const rows = [...facts.tables.values()]
          .filter((t) => t.kind !== 'partitioned')
          .reduce((n, t) => n + t.rows, 0);
        return { tables: facts.tables.size, rows };
      });
    },
  };
}

export type PointInTimeActivities = ReturnType<typeof createPointInTimeActivities>;
