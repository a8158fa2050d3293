import { Context } from '@temporalio/activity';
import { FailureType, failure } from '../../common/failures';
import type { Month, RetentionMode } from '../../common/lifecycle';
import { deleteExpiredRecommendations, dropLeftoverDatabases, vacuumAnalyze } from './cleanup';
import { type PgConnectionSettings, withPg } from './connection';
import { type MigrateFn, initDatabase } from './init';
import {
  type DrainProgress,
  applyPartitionRetention,
  drainDefaultPartition,
  partitionStatus,
  premakeBehaviorPartitions,
} from './partitions';

export interface LifecycleDeps {
  readonly pg: PgConnectionSettings;
  /** The migrator (DBOPS_MIGRATIONS_DIR); undefined when the worker has none wired: init then fails clearly. */
  readonly migrate?: MigrateFn;
}

const DEFAULT_BATCH_ROWS = 10_000;
const HEARTBEAT_EVERY_MS = 10_000;

/** Activities for init, cleanup and partition maintenance. Long ones heartbeat rows done so far. */
export function createLifecycleActivities(deps: LifecycleDeps) {
  const { pg } = deps;
  return {
    async initDatabase(input: { database: string; role: string }) {
      const migrate: MigrateFn =
        deps.migrate ??
        (() => {
          throw failure(
            FailureType.Misconfigured,
            'this worker has no migrations configured (DBOPS_MIGRATIONS_DIR): cannot initialize a database',
          );
        });
      return initDatabase(pg, input, async (db) => {
        Context.current().heartbeat({ phase: 'migrating', database: db });
        return migrate(db);
      });
    },

    async partitionStatus(input: { database: string }) {
      return withPg(pg, input.database, (c) => partitionStatus(c, input.database));
    },

    async premakeBehaviorPartitions(input: { database: string; fromMonth: Month; monthsAhead: number }) {
      return withPg(pg, input.database, (c) =>
        premakeBehaviorPartitions(c, input.database, input.fromMonth, input.monthsAhead),
      );
    },

    /**
     * Streaming profile: heartbeats after every batch with the rows moved so far, and every 10 s
     * while one long statement runs (the month's DELETE, the ATTACH's index builds and scan).
     */
    async drainDefaultPartition(input: { database: string; batchRows?: number }) {
      const ctx = Context.current();
      let last: DrainProgress | { phase: string } = { phase: 'starting' };
      ctx.heartbeat(last);
      const timer = setInterval(() => ctx.heartbeat(last), HEARTBEAT_EVERY_MS);
      try {
        return await withPg(pg, input.database, (c) =>
          drainDefaultPartition(c, input.database, {
            batchRows: input.batchRows ?? DEFAULT_BATCH_ROWS,
            onProgress: (p) => {
              last = p;
              ctx.heartbeat(p);
            },
            signal: ctx.cancellationSignal,
          }),
        );
      } finally {
        clearInterval(timer);
      }
    },

    async applyPartitionRetention(input: {
      database: string;
      /** ISO time the retention is computed at (the workflow's clock, so retries agree). */
      now: string;
      retentionMonths: number;
      mode: RetentionMode;
      verifiedBackups: readonly string[];
      dryRun: boolean;
    }) {
      return withPg(pg, input.database, (c) =>
        applyPartitionRetention(c, input.database, { ...input, now: new Date(input.now) }),
      );
    },

    async deleteExpiredRecommendations(input: { database: string; batchRows?: number; dryRun: boolean }) {
      const ctx = Context.current();
      return withPg(pg, input.database, (c) =>
        deleteExpiredRecommendations(c, {
          batchRows: input.batchRows ?? DEFAULT_BATCH_ROWS,
          dryRun: input.dryRun,
          onBatch: (deleted) => ctx.heartbeat({ deleted }),
          signal: ctx.cancellationSignal,
        }),
      );
    },

    async dropLeftoverDatabases(input: {
      database: string;
      now: string;
      keepDays: number;
      scratchMaxAgeMs: number;
      dryRun: boolean;
    }) {
      return withPg(pg, pg.database === input.database ? 'postgres' : pg.database, (c) =>
        dropLeftoverDatabases(c, input.database, { ...input, now: new Date(input.now) }),
      );
    },

    async vacuumAnalyze(input: { database: string; tables: readonly string[] }) {
      return withPg(pg, input.database, (c) => vacuumAnalyze(c, input.tables));
    },
  };
}

export type LifecycleActivities = ReturnType<typeof createLifecycleActivities>;
