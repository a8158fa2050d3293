import type { MilvusClient } from '@zilliz/milvus2-sdk-node';
import type { Client as PgClient } from 'pg';
import { failure, FailureType } from '../../common/failures';
import { ensureOk } from './client';
import type { CollectionKind } from './collections';
import {
  compare,
  PG_EMBEDDING_TABLES,
  type ConsistencyReport,
  type ConsistencyTarget,
  type ProgressFn,
} from './consistency';

/**
 * The repair behind `dbops milvus check --fix` (run by workflows/milvus-repair.ts): upserts the
 * vectors missing from Milvus from PostgreSQL and deletes the orphans (ids absent from PostgreSQL),
 * bounded by the deletions the workflow allowed (common/milvus-repair.ts).
 */

async function hasItemsTable(pg: PgClient): Promise<boolean> {
  const r = await pg.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name = 'items' AND column_name IN ('id', 'type', 'created_at')`,
  );
  return r.rows[0]?.n === '3';
}

function rowsQuery(kind: CollectionKind, withItems: boolean): string {
  if (kind === 'users') {
    return `SELECT e.user_id::text AS id, e.embedding::text AS embedding,
                   (extract(epoch FROM coalesce(e.updated_at, now())) * 1000)::bigint::text AS ts
              FROM public.user_embeddings e WHERE e.user_id = ANY($1::uuid[]) AND e.embedding IS NOT NULL`;
  }
  return withItems
    ? `SELECT e.item_id::text AS id, e.embedding::text AS embedding, coalesce(i.type, '') AS item_type,
              (extract(epoch FROM coalesce(i.created_at, e.updated_at, now())) * 1000)::bigint::text AS ts
         FROM public.item_embeddings e LEFT JOIN public.items i ON i.id = e.item_id
        WHERE e.item_id = ANY($1::uuid[]) AND e.embedding IS NOT NULL`
    : `SELECT e.item_id::text AS id, e.embedding::text AS embedding, '' AS item_type,
              (extract(epoch FROM coalesce(e.updated_at, now())) * 1000)::bigint::text AS ts
         FROM public.item_embeddings e WHERE e.item_id = ANY($1::uuid[]) AND e.embedding IS NOT NULL`;
}

export interface RepairLimits {
  /**
   * Refuse, before changing anything, when more orphans than this are found: the workflow allowed
   * this many from its check, and more now means the data changed since (or another database).
   */
  readonly maxDeletes: number;
  readonly batchSize?: number;
  readonly sampleSize?: number;
}

export interface RepairResult {
  readonly before: ConsistencyReport;
  readonly upserted: number;
  readonly deleted: number;
  /** Compared again after the deletes, with Strong consistency (never from statistics). */
  readonly after: ConsistencyReport;
}

async function upsertMissing(
  client: MilvusClient,
  pg: PgClient,
  target: ConsistencyTarget,
  missingIds: readonly string[],
  batchSize: number,
  onProgress: ProgressFn,
): Promise<number> {
  const { idColumn } = PG_EMBEDDING_TABLES[target.kind];
  const withItems = target.kind === 'items' && (await hasItemsTable(pg));
  const sql = rowsQuery(target.kind, withItems);
  let upserted = 0;
  for (let i = 0; i < missingIds.length; i += batchSize) {
    const batch = missingIds.slice(i, i + batchSize);
    const r = await pg.query<{ id: string; embedding: string; item_type?: string; ts: string }>(sql, [batch]);
    const rows = r.rows.map((row) => {
      const base = { [idColumn]: row.id, embedding: JSON.parse(row.embedding) as number[] };
      return target.kind === 'items'
        ? { ...base, item_type: (row.item_type ?? '').slice(0, 32), created_at: Number(row.ts) }
        : { ...base, updated_at: Number(row.ts) };
    });
    if (rows.length) {
      const res = await client.upsert({ collection_name: target.collection, fields_data: rows });
      ensureOk(res, `upsert into ${target.collection}`, FailureType.Misconfigured);
      upserted += rows.length;
    }
    onProgress({
      phase: 'upsert',
      done: Math.min(i + batchSize, missingIds.length),
      total: missingIds.length,
    });
  }
  return upserted;
}

async function deleteOrphans(
  client: MilvusClient,
  target: ConsistencyTarget,
  orphanedIds: readonly string[],
  batchSize: number,
  onProgress: ProgressFn,
): Promise<number> {
  const { idColumn } = PG_EMBEDDING_TABLES[target.kind];
  let deleted = 0;
  for (let i = 0; i < orphanedIds.length; i += batchSize) {
    const batch = orphanedIds.slice(i, i + batchSize);
    const expr = `${idColumn} in [${batch.map((id) => JSON.stringify(id)).join(',')}]`;
    ensureOk(
      await client.deleteEntities({ collection_name: target.collection, expr }),
      `delete orphans from ${target.collection}`,
    );
    deleted += batch.length;
    onProgress({ phase: 'delete', done: deleted, total: orphanedIds.length });
  }
  return deleted;
}

/**
 * Compares, refuses when the orphans exceed `limits.maxDeletes` (nothing changed), else upserts the
 * missing vectors and deletes the orphans in batches, and compares again. Idempotent: a retry after
 * a partial run finds fewer differences, within the same bound.
 */
export async function repairConsistency(
  client: MilvusClient,
  pg: PgClient,
  target: ConsistencyTarget,
  limits: RepairLimits,
  onProgress: ProgressFn,
): Promise<RepairResult> {
  const { batchSize = 500, sampleSize = 10 } = limits;
  const {
    report: before,
    missingIds,
    orphanedIds,
  } = await compare(client, pg, target, sampleSize, onProgress);
  if (orphanedIds.length > limits.maxDeletes) {
    throw failure(
      FailureType.Refused,
      `found ${orphanedIds.length} orphans in Milvus collection ${target.collection} (ids absent from ` +
        `PostgreSQL database ${target.database}), more than the ${limits.maxDeletes} this repair was ` +
        `allowed to delete: the data changed since the check; nothing was changed, check again`,
    );
  }
  const upserted = await upsertMissing(client, pg, target, missingIds, batchSize, onProgress);
  const deleted = await deleteOrphans(client, target, orphanedIds, batchSize, onProgress);
  const { report: after } = await compare(client, pg, target, sampleSize, onProgress);
  return { before, upserted, deleted, after };
}
