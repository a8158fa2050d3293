import { Context } from '@temporalio/activity';
import type { PgConnectionSettings } from '../postgres/connection';
import { withPg } from '../postgres/connection';
import type { IndexType, Metric } from './advisor';
import { withMilvus, type MilvusConnectionSettings } from './client';
import { collectionSpecs, type CollectionKind, type CollectionNames } from './collections';
import type { ConsistencyTarget } from './consistency';
import type { IndexPolicy } from './manage';

/**
 * The modules that use the Milvus SDK's enums at run time, loaded on the first Milvus activity: a
 * worker that only runs backups and restores never loads the SDK (gRPC, protobuf) into memory.
 */
async function milvusOps() {
  const [consistency, maintenance, manage, repair, stats] = await Promise.all([
    import('./consistency'),
    import('./maintenance'),
    import('./manage'),
    import('./repair'),
    import('./stats'),
  ]);
  return { ...consistency, ...maintenance, ...manage, ...repair, ...stats };
}

export interface MilvusSettings extends MilvusConnectionSettings {
  readonly dim: number;
  readonly metric: Metric;
  readonly indexType: IndexType;
}

export interface MilvusDeps {
  readonly milvus: MilvusSettings;
  /** For the PostgreSQL ↔ Milvus consistency check. */
  readonly pg: PgConnectionSettings;
}

/** Heartbeats when running as an activity (no-op when called in-process by the CLI); honours cancellation. */
function progress(details: unknown): void {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return;
  }
  if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? new Error('activity cancelled');
  ctx.heartbeat(details);
}

export function createMilvusActivities(deps: MilvusDeps) {
  const conn = deps.milvus;
  const policy: IndexPolicy = { indexType: deps.milvus.indexType, metric: deps.milvus.metric };
  const consistencyTarget = (input: {
    kind: CollectionKind;
    collection: string;
    database?: string;
  }): ConsistencyTarget => ({
    kind: input.kind,
    collection: input.collection,
    database: input.database ?? deps.pg.database,
  });

  return {
    /** Creates missing collections, indexes and loads them; reports drift; never drops. */
    async milvusInit(input: { names?: CollectionNames } = {}) {
      const { ensureCollection } = await milvusOps();
      return withMilvus(conn, async (client) => {
        const results = [];
        for (const spec of collectionSpecs(deps.milvus.dim, input.names)) {
          results.push(await ensureCollection(client, spec, policy));
        }
        return results;
      });
    },

    async milvusStats(input: { collections: string[] }) {
      const { collectionStats } = await milvusOps();
      return withMilvus(conn, async (client) => {
        const out = [];
        for (const name of input.collections) out.push(await collectionStats(client, name));
        return out;
      });
    },

    async milvusAdvise(input: { collection: string }) {
      const { indexReport } = await milvusOps();
      return withMilvus(conn, (client) => indexReport(client, input.collection, policy));
    },

    /** Drop + recreate the vector index with the advised parameters, then reload. Long: heartbeats. */
    async milvusRebuildIndex(input: { collection: string }) {
      const { rebuildIndex } = await milvusOps();
      return withMilvus(conn, (client) =>
        rebuildIndex(client, input.collection, policy, (phase, indexed, total) =>
          progress({ phase, indexed, total }),
        ),
      );
    },

    async milvusFlush(input: { collection: string }) {
      const { flushCollection } = await milvusOps();
      return withMilvus(conn, (client) => flushCollection(client, input.collection, progress));
    },

    async milvusStartCompaction(input: { collection: string }) {
      const { startCompaction } = await milvusOps();
      return withMilvus(conn, (client) => startCompaction(client, input.collection));
    },

    async milvusCompactionState(input: { compactionId: string }) {
      const { compactionStatus } = await milvusOps();
      return withMilvus(conn, (client) => compactionStatus(client, input.compactionId));
    },

    async milvusCompactionPlans(input: { compactionId: string }) {
      const { compactionPlans } = await milvusOps();
      return withMilvus(conn, (client) => compactionPlans(client, input.compactionId));
    },

    /** Read-only: ids in PostgreSQL vs ids in Milvus (Strong reads); heartbeats while reading. */
    async milvusCheckConsistency(input: { kind: CollectionKind; collection: string; database?: string }) {
      const { checkConsistency } = await milvusOps();
      const target = consistencyTarget(input);
      return withMilvus(conn, (client) =>
        withPg(deps.pg, target.database, (pg) => checkConsistency(client, pg, target, 10, progress)),
      );
    },

    /**
     * Upserts missing vectors and deletes orphans in batches; refuses, changing nothing, when it
     * finds more than `maxDeletes` orphans (the bound the repair workflow allowed). Heartbeats.
     */
    async milvusRepairConsistency(input: {
      kind: CollectionKind;
      collection: string;
      database?: string;
      maxDeletes: number;
      batchSize?: number;
    }) {
      const { repairConsistency } = await milvusOps();
      const target = consistencyTarget(input);
      const limits = { maxDeletes: input.maxDeletes, batchSize: input.batchSize };
      return withMilvus(conn, (client) =>
        withPg(deps.pg, target.database, (pg) => repairConsistency(client, pg, target, limits, progress)),
      );
    },
  };
}

export type MilvusActivities = ReturnType<typeof createMilvusActivities>;
