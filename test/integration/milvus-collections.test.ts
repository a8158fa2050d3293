import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, LoadState, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { createMilvusActivities } from '../../activities/milvus';
import { connectMilvus } from '../../activities/milvus/client';
import { repairConsistency } from '../../activities/milvus/repair';
import { withPg } from '../../activities/postgres/connection';
import { failureTypeOf } from '../../common/failures';
import { seededUnitVector } from '../helpers/vectors';
import { testConfig, uniqueSuffix } from '../helpers/stack';

const suffix = uniqueSuffix();
const names = { items: `t_items_${suffix}`, users: `t_users_${suffix}` };
const ivfName = `t_ivf_${suffix}`;
const driftName = `t_drift_${suffix}`;
const syncName = `t_sync_${suffix}`;
const database = `t_milvus_${suffix}`;
const DIM = 256;

const config = testConfig({ PGDATABASE: database });
const hnsw = createMilvusActivities({ milvus: config.milvus, pg: config.pg });
const ivf = createMilvusActivities({ milvus: { ...config.milvus, indexType: 'IVF_FLAT' }, pg: config.pg });
let client: MilvusClient;

const unitVector = (seed: number, dim = DIM): number[] => seededUnitVector(seed, dim);

async function insertBatches(collection: string, batches: number, size: number): Promise<string[]> {
  const ids: string[] = [];
  for (let b = 0; b < batches; b++) {
    const rows = Array.from({ length: size }, (_, i) => {
      const id = randomUUID();
      ids.push(id);
      return { item_id: id, embedding: unitVector(b * size + i), item_type: 'movie', created_at: Date.now() };
    });
    const res = await client.insert({ collection_name: collection, fields_data: rows });
    expect(res.status.error_code).toBe('Success');
    await client.flushSync({ collection_names: [collection] });
  }
  return ids;
}

beforeAll(async () => {
  client = await connectMilvus(config.milvus);
  await withPg(config.pg, 'postgres', (pg) => pg.query(`CREATE DATABASE ${database}`));
  await withPg(config.pg, database, async (pg) => {
    await pg.query('CREATE EXTENSION IF NOT EXISTS vector');
    // The V005 shapes, without the foreign keys (this test needs no items/users rows).
    await pg.query(`CREATE TABLE item_embeddings (item_id uuid PRIMARY KEY, embedding vector(${DIM}) NOT NULL,
                      model_version text NOT NULL DEFAULT 'v1', updated_at timestamptz NOT NULL DEFAULT now())`);
    await pg.query(`CREATE TABLE user_embeddings (user_id uuid PRIMARY KEY, embedding vector(${DIM}) NOT NULL,
                      model_version text NOT NULL DEFAULT 'v1', updated_at timestamptz NOT NULL DEFAULT now())`);
  });
});

afterAll(async () => {
  for (const name of [names.items, names.users, ivfName, driftName, syncName]) {
    await client?.dropCollection({ collection_name: name }).catch(() => undefined);
  }
  client?.closeConnection();
  await withPg(config.pg, 'postgres', (pg) => pg.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
});

describe('dbops milvus init', () => {
  it('creates both collections with the exact schema, index and load state; a second run changes nothing', async () => {
    const first = await hnsw.milvusInit({ names });
    expect(first.map((r) => [r.collection, r.collectionAction, r.indexAction, r.loadAction])).toEqual([
      [names.items, 'created', 'created', 'loaded'],
      [names.users, 'created', 'created', 'loaded'],
    ]);

    const items = await client.describeCollection({ collection_name: names.items });
    expect(items.consistency_level).toBe('Strong');
    const shape = (fields: typeof items.schema.fields) =>
      fields.map((f) => ({
        name: f.name,
        type: f.data_type,
        pk: Boolean(f.is_primary_key),
        autoID: Boolean(f.autoID),
        params: Object.fromEntries(f.type_params.map((p) => [p.key, String(p.value)])),
      }));
    expect(shape(items.schema.fields)).toEqual([
      { name: 'item_id', type: 'VarChar', pk: true, autoID: false, params: { max_length: '64' } },
      { name: 'embedding', type: 'FloatVector', pk: false, autoID: false, params: { dim: '256' } },
      { name: 'item_type', type: 'VarChar', pk: false, autoID: false, params: { max_length: '32' } },
      { name: 'created_at', type: 'Int64', pk: false, autoID: false, params: {} },
    ]);
    const users = await client.describeCollection({ collection_name: names.users });
    expect(users.consistency_level).toBe('Strong');
    expect(shape(users.schema.fields)).toEqual([
      { name: 'user_id', type: 'VarChar', pk: true, autoID: false, params: { max_length: '64' } },
      { name: 'embedding', type: 'FloatVector', pk: false, autoID: false, params: { dim: '256' } },
      { name: 'updated_at', type: 'Int64', pk: false, autoID: false, params: {} },
    ]);

    for (const name of [names.items, names.users]) {
      const load = await client.getLoadState({ collection_name: name });
      expect(load.state).toBe(LoadState.LoadStateLoaded);
    }
    const [stats] = await hnsw.milvusStats({ collections: [names.items] });
    expect(stats?.index).toMatchObject({
      indexType: 'HNSW',
      metric: 'COSINE',
      params: { M: 16, efConstruction: 200 },
    });

    const second = await hnsw.milvusInit({ names });
    expect(second.map((r) => [r.collectionAction, r.indexAction, r.loadAction])).toEqual([
      ['unchanged', 'unchanged', 'unchanged'],
      ['unchanged', 'unchanged', 'unchanged'],
    ]);
    const again = await client.describeCollection({ collection_name: names.items });
    expect(again.collectionID).toBe(items.collectionID);
  });

  it('reports a drifted collection field by field and leaves it (and its data) alone', async () => {
    await client.createCollection({
      collection_name: driftName,
      fields: [
        { name: 'item_id', data_type: DataType.VarChar, is_primary_key: true, max_length: 36 },
        { name: 'embedding', data_type: DataType.FloatVector, dim: 128 },
        { name: 'created_at', data_type: DataType.Int64 },
      ],
    });
    await client.insert({
      collection_name: driftName,
      fields_data: [{ item_id: 'keep-me', embedding: unitVector(1, 128), created_at: 1 }],
    });
    await client.flushSync({ collection_names: [driftName] });
    const before = await client.describeCollection({ collection_name: driftName });

    const [result] = await hnsw.milvusInit({ names: { items: driftName, users: names.users } });
    expect(result?.collectionAction).toBe('drifted');
    expect(result?.indexAction).toBe('skipped');
    expect(result?.differences).toEqual(
      expect.arrayContaining([
        { field: 'item_id', property: 'max_length', expected: '64', actual: '36' },
        { field: 'embedding', property: 'dim', expected: '256', actual: '128' },
        { field: 'item_type', property: 'presence', expected: 'present (VarChar)', actual: 'missing' },
      ]),
    );
    const after = await client.describeCollection({ collection_name: driftName });
    expect(after.collectionID).toBe(before.collectionID);
    const stats = await client.getCollectionStatistics({ collection_name: driftName });
    expect(Number(stats.data.row_count)).toBe(1);
  });
});

describe('dbops milvus advise', () => {
  it('sizes IVF nlist from rows per segment and --rebuild changes the index params', async () => {
    const [created] = await ivf.milvusInit({ names: { items: ivfName, users: names.users } });
    expect(created?.collectionAction).toBe('created');
    let report = await ivf.milvusAdvise({ collection: ivfName });
    expect(report.current).toMatchObject({
      indexType: 'IVF_FLAT',
      metric: 'COSINE',
      params: { nlist: 1024 },
    });

    const ids = await insertBatches(ivfName, 3, 1000);
    report = await ivf.milvusAdvise({ collection: ivfName });
    expect(report.size).toEqual({ rows: 3000, segments: 3 });
    expect(report.advice.index.params).toEqual({ nlist: 126 });
    expect(report.advice.search).toEqual({ nprobe: 8 });
    expect(report.drift).toEqual(['nlist 1024, advised 126 (more than 2× apart)']);

    const rebuilt = await ivf.milvusRebuildIndex({ collection: ivfName });
    expect(rebuilt.current).toMatchObject({
      indexType: 'IVF_FLAT',
      params: { nlist: 126 },
      state: 'Finished',
    });
    expect(rebuilt.drift).toEqual([]);
    const load = await client.getLoadState({ collection_name: ivfName });
    expect(load.state).toBe(LoadState.LoadStateLoaded);

    const search = await client.search({
      collection_name: ivfName,
      vector: unitVector(1500),
      limit: 1,
      params: { nprobe: 16 },
      output_fields: ['item_id'],
    });
    expect(search.results[0]?.id).toBe(ids[1500]);
  });
});

describe('dbops milvus check', () => {
  it('finds planted missing and orphaned ids; the repair refuses above its bound, else repairs them', async () => {
    await hnsw.milvusInit({ names: { items: syncName, users: names.users } });
    const pgIds: string[] = Array.from({ length: 200 }, () => randomUUID());
    await withPg(config.pg, database, async (pg) => {
      for (let i = 0; i < pgIds.length; i++) {
        await pg.query('INSERT INTO item_embeddings (item_id, embedding) VALUES ($1, $2)', [
          pgIds[i],
          JSON.stringify(unitVector(10_000 + i)),
        ]);
      }
    });
    const present = pgIds.slice(0, 180);
    const missing = pgIds.slice(180);
    const orphans: string[] = Array.from({ length: 15 }, () => randomUUID());
    const toMilvus = [
      ...present.map((id, i) => ({ id, seed: 10_000 + i })),
      ...orphans.map((id, i) => ({ id, seed: i })),
    ];
    await client.insert({
      collection_name: syncName,
      fields_data: toMilvus.map((r) => ({
        item_id: r.id,
        embedding: unitVector(r.seed),
        item_type: 'movie',
        created_at: 1,
      })),
    });

    const report = await hnsw.milvusCheckConsistency({ kind: 'items', collection: syncName, database });
    expect(report.postgresIds).toBe(200);
    expect(report.milvusIds).toBe(195);
    expect(report.missing.count).toBe(20);
    expect([...report.missing.sample].every((id) => missing.includes(id))).toBe(true);
    expect(report.missing.sample).toHaveLength(10);
    expect(report.orphaned.count).toBe(15);
    expect([...report.orphaned.sample].every((id) => orphans.includes(id))).toBe(true);

    // The repair workflow's bound (common/milvus-repair.ts): more orphans than allowed → nothing changes.
    const target = { kind: 'items' as const, collection: syncName, database };
    const refused = await withPg(config.pg, database, (pg) =>
      repairConsistency(client, pg, target, { maxDeletes: 14 }, () => undefined),
    ).catch((e: unknown) => e);
    expect(failureTypeOf(refused)).toBe('Refused');
    expect(String(refused)).toContain('found 15 orphans');
    const unchanged = await hnsw.milvusCheckConsistency(target);
    expect([unchanged.milvusIds, unchanged.missing.count, unchanged.orphaned.count]).toEqual([195, 20, 15]);

    const phases: string[] = [];
    const fixed = await withPg(config.pg, database, (pg) =>
      repairConsistency(client, pg, target, { maxDeletes: 15, batchSize: 8 }, (p) => phases.push(p.phase)),
    );
    expect(fixed.upserted).toBe(20);
    expect(fixed.deleted).toBe(15);
    expect(phases.filter((p) => p === 'upsert')).toHaveLength(3); // 20 rows in batches of 8
    expect(fixed.after.missing.count).toBe(0);
    expect(fixed.after.orphaned.count).toBe(0);
    expect(fixed.after.milvusIds).toBe(200);

    const got = await client.query({
      collection_name: syncName,
      expr: `item_id == "${missing[0]}"`,
      output_fields: ['item_id', 'embedding'],
    });
    const vector = got.data[0]?.embedding as number[];
    unitVector(10_180).forEach((c, i) => expect(vector[i]).toBeCloseTo(c, 5));

    const clean = await hnsw.milvusCheckConsistency({ kind: 'items', collection: syncName, database });
    expect([clean.missing.count, clean.orphaned.count]).toEqual([0, 0]);
  });
});
