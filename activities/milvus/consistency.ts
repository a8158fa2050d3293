import type { ConsistencyLevelEnum, MilvusClient } from '@zilliz/milvus2-sdk-node';
import type { Client as PgClient } from 'pg';
import { failure, FailureType } from '../../common/failures';
import { ensureOk } from './client';
import type { CollectionKind } from './collections';

/**
 * ConsistencyLevelEnum.Strong (0). Not imported as a value: the CLI loads this module for every
 * command, and the SDK (gRPC, protobuf) should only be loaded when Milvus is actually used.
 */
const STRONG = 0 as ConsistencyLevelEnum.Strong;

/** Where the embeddings of each kind live in PostgreSQL (V005) and the matching Milvus key. */
export const PG_EMBEDDING_TABLES: Readonly<Record<CollectionKind, { table: string; idColumn: string }>> = {
  items: { table: 'item_embeddings', idColumn: 'item_id' },
  users: { table: 'user_embeddings', idColumn: 'user_id' },
};

export interface ConsistencyTarget {
  readonly kind: CollectionKind;
  readonly collection: string;
  /** PostgreSQL database holding the embedding tables. */
  readonly database: string;
}

export interface IdDifference {
  readonly count: number;
  readonly sample: readonly string[];
}

export interface ConsistencyReport {
  readonly kind: CollectionKind;
  readonly collection: string;
  readonly table: string;
  readonly postgresIds: number;
  readonly milvusIds: number;
  /** In PostgreSQL with an embedding, absent from Milvus. */
  readonly missing: IdDifference;
  /** In Milvus, absent from PostgreSQL. */
  readonly orphaned: IdDifference;
}

/** Progress of a check or repair: the activity's heartbeat (which also delivers cancellation). */
export type ProgressFn = (p: { phase: string; done: number; total?: number }) => void;

// Milvus caps offset+limit of a query at 16384; larger id sets are enumerated by id prefix.
const QUERY_LIMIT = 16384;
// uuid text alphabet; other ids are detected by the count check below and reported.
const ID_ALPHABET = '0123456789abcdef-';

async function assertTable(pg: PgClient, table: string, database: string): Promise<void> {
  const r = await pg.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`public.${table}`]);
  if (!r.rows[0]?.t) {
    throw failure(
      FailureType.Misconfigured,
      `PostgreSQL table ${table} does not exist in database ${database}: apply the migrations (V005 creates it)`,
    );
  }
}

export async function postgresIds(pg: PgClient, target: ConsistencyTarget): Promise<Set<string>> {
  const { table, idColumn } = PG_EMBEDDING_TABLES[target.kind];
  await assertTable(pg, table, target.database);
  const r = await pg.query<{ id: string }>(
    `SELECT ${idColumn}::text AS id FROM public.${table} WHERE embedding IS NOT NULL`,
  );
  return new Set(r.rows.map((row) => row.id));
}

async function queryIds(
  client: MilvusClient,
  collection: string,
  pk: string,
  expr: string,
): Promise<string[]> {
  const res = await client.query({
    collection_name: collection,
    expr,
    output_fields: [pk],
    limit: QUERY_LIMIT,
    consistency_level: STRONG,
  });
  ensureOk(res, `query ids of ${collection}`);
  return res.data.map((row) => String(row[pk]));
}

async function countEntities(client: MilvusClient, collection: string): Promise<number> {
  const res = await client.query({
    collection_name: collection,
    expr: '',
    output_fields: ['count(*)'],
    consistency_level: STRONG,
  });
  ensureOk(res, `count(*) on ${collection}`);
  return Number(res.data[0]?.['count(*)'] ?? 0);
}

/** Every primary key in the (loaded) collection, read with Strong consistency (deletes already applied). */
export async function milvusIds(
  client: MilvusClient,
  collection: string,
  pk: string,
  onProgress: ProgressFn = () => undefined,
): Promise<Set<string>> {
  const ids = new Set<string>();
  const walk = async (prefix: string): Promise<void> => {
    const expr = prefix === '' ? `${pk} != ""` : `${pk} like "${prefix}%"`;
    const got = await queryIds(client, collection, pk, expr);
    onProgress({ phase: 'read Milvus ids', done: ids.size + got.length });
    if (got.length < QUERY_LIMIT || prefix.length >= 8) {
      for (const id of got) ids.add(id);
      return;
    }
    for (const ch of ID_ALPHABET) await walk(prefix + ch);
  };
  await walk('');
  const total = await countEntities(client, collection);
  if (ids.size < total) {
    throw failure(
      FailureType.Misconfigured,
      `Milvus collection ${collection} has ${total} entities but only ${ids.size} have uuid-shaped ids: ` +
        `ids outside [0-9a-f-] cannot be enumerated; clean them up manually`,
    );
  }
  return ids;
}

function difference(
  a: Set<string>,
  b: Set<string>,
  sampleSize: number,
): { all: string[]; diff: IdDifference } {
  const all = [...a].filter((id) => !b.has(id)).sort();
  return { all, diff: { count: all.length, sample: all.slice(0, sampleSize) } };
}

/** The report, with every missing and orphaned id (sorted) for a repair. */
export async function compare(
  client: MilvusClient,
  pg: PgClient,
  target: ConsistencyTarget,
  sampleSize: number,
  onProgress: ProgressFn = () => undefined,
) {
  const { table, idColumn } = PG_EMBEDDING_TABLES[target.kind];
  const inPg = await postgresIds(pg, target);
  onProgress({ phase: 'read PostgreSQL ids', done: inPg.size });
  const inMilvus = await milvusIds(client, target.collection, idColumn, onProgress);
  const missing = difference(inPg, inMilvus, sampleSize);
  const orphaned = difference(inMilvus, inPg, sampleSize);
  const report: ConsistencyReport = {
    kind: target.kind,
    collection: target.collection,
    table,
    postgresIds: inPg.size,
    milvusIds: inMilvus.size,
    missing: missing.diff,
    orphaned: orphaned.diff,
  };
  return { report, missingIds: missing.all, orphanedIds: orphaned.all };
}

export async function checkConsistency(
  client: MilvusClient,
  pg: PgClient,
  target: ConsistencyTarget,
  sampleSize = 10,
  onProgress: ProgressFn = () => undefined,
): Promise<ConsistencyReport> {
  return (await compare(client, pg, target, sampleSize, onProgress)).report;
}
