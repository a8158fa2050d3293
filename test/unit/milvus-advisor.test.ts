import { describe, expect, it } from 'vitest';
import { adviseHnsw, adviseIndex, adviseIvfFlat, indexDrift } from '../../activities/milvus/advisor';
import { itemEmbeddingsSpec, userEmbeddingsSpec } from '../../activities/milvus/collections';
import { diffSchema, type LiveField } from '../../activities/milvus/schema-diff';
import { milvusMaintenanceWorkflowId } from '../../common/ids';

describe('index advisor', () => {
  it.each([
    // rows, segments, nlist, nprobe
    [0, 0, 1024, 64],
    [10, 1, 10, 1],
    [3000, 3, 126, 8],
    [1_000_000, 1, 4000, 250],
    [10_000_000, 10, 4000, 250],
    [524_288, 1, 2896, 181],
    [1_000_000_000_000, 1, 65536, 4096],
  ])('IVF_FLAT for %i rows in %i segments: nlist %i, nprobe %i', (rows, segments, nlist, nprobe) => {
    const advice = adviseIvfFlat({ rows, segments }, 'COSINE');
    expect(advice.index).toEqual({ indexType: 'IVF_FLAT', metric: 'COSINE', params: { nlist } });
    expect(advice.search).toEqual({ nprobe });
    expect(advice.reasons.length).toBeGreaterThan(0);
  });

  it.each([
    [0, 16, 200, 64],
    [50_000, 16, 200, 64],
    [1_000_000, 16, 200, 64],
    [1_000_001, 32, 320, 128],
    [10_000_000, 32, 320, 128],
    [50_000_000, 48, 500, 256],
  ])('HNSW for %i rows: M %i, efConstruction %i, ef %i', (rows, M, efConstruction, ef) => {
    const advice = adviseHnsw({ rows, segments: 1 }, 'IP');
    expect(advice.index).toEqual({ indexType: 'HNSW', metric: 'IP', params: { M, efConstruction } });
    expect(advice.search).toEqual({ ef });
  });

  it('reports drift only when worth a rebuild', () => {
    const ivf = adviseIndex('IVF_FLAT', 'COSINE', { rows: 3000, segments: 3 }).index; // nlist 126
    expect(indexDrift({ indexType: 'IVF_FLAT', metric: 'COSINE', params: { nlist: 200 } }, ivf)).toEqual([]);
    expect(indexDrift({ indexType: 'IVF_FLAT', metric: 'COSINE', params: { nlist: 1024 } }, ivf)).toEqual([
      'nlist 1024, advised 126 (more than 2× apart)',
    ]);
    expect(indexDrift({ indexType: 'IVF_FLAT', metric: 'IP', params: { nlist: 126 } }, ivf)).toEqual([
      'metric IP, configured COSINE',
    ]);
    expect(indexDrift(undefined, ivf)).toEqual(['no index on the vector field']);
    const hnsw = adviseIndex('HNSW', 'COSINE', { rows: 10, segments: 1 }).index;
    expect(
      indexDrift({ indexType: 'HNSW', metric: 'COSINE', params: { M: 16, efConstruction: 200 } }, hnsw),
    ).toEqual([]);
    expect(
      indexDrift({ indexType: 'HNSW', metric: 'COSINE', params: { M: 8, efConstruction: 200 } }, hnsw),
    ).toEqual(['M 8, advised 16']);
    expect(indexDrift({ indexType: 'IVF_FLAT', metric: 'COSINE', params: { nlist: 1024 } }, hnsw)).toEqual([
      'index type IVF_FLAT, configured HNSW',
    ]);
  });
});

describe('schema diff', () => {
  const live = (dim: string, pkLength: string): LiveField[] => [
    {
      name: 'item_id',
      data_type: 'VarChar',
      is_primary_key: true,
      type_params: [{ key: 'max_length', value: pkLength }],
    },
    { name: 'embedding', data_type: 'FloatVector', type_params: [{ key: 'dim', value: dim }] },
    { name: 'item_type', data_type: 'VarChar', type_params: [{ key: 'max_length', value: '32' }] },
    { name: 'created_at', data_type: 'Int64' },
  ];

  it('matches the spec exactly', () => {
    expect(diffSchema(itemEmbeddingsSpec(256), { fields: live('256', '64'), consistency: 'Strong' })).toEqual(
      [],
    );
  });

  it('reports every difference field by field', () => {
    const fields = live('128', '36').filter((f) => f.name !== 'created_at');
    fields.push({ name: 'extra', data_type: 'Int64' });
    fields[2] = { name: 'item_type', data_type: 'Int64' };
    const diffs = diffSchema(itemEmbeddingsSpec(256), { fields, consistency: 'Bounded' });
    expect(diffs).toEqual([
      { field: 'item_id', property: 'max_length', expected: '64', actual: '36' },
      { field: 'embedding', property: 'dim', expected: '256', actual: '128' },
      { field: 'item_type', property: 'type', expected: 'VarChar', actual: 'Int64' },
      { field: 'item_type', property: 'max_length', expected: '32', actual: 'none' },
      { field: 'created_at', property: 'presence', expected: 'present (Int64)', actual: 'missing' },
      { field: 'extra', property: 'presence', expected: 'absent', actual: 'present (Int64)' },
      { field: '(collection)', property: 'consistency', expected: 'Strong', actual: 'Bounded' },
    ]);
  });

  it('reports a different primary key', () => {
    const spec = userEmbeddingsSpec(8);
    const diffs = diffSchema(spec, {
      fields: [
        { name: 'user_id', data_type: 'VarChar', type_params: [{ key: 'max_length', value: '64' }] },
        { name: 'embedding', data_type: 'FloatVector', type_params: [{ key: 'dim', value: '8' }] },
        { name: 'updated_at', data_type: 'Int64', is_primary_key: true },
      ],
    });
    expect(diffs).toEqual([
      { field: 'user_id', property: 'primary_key', expected: 'true', actual: 'false' },
      { field: 'updated_at', property: 'primary_key', expected: 'false', actual: 'true' },
    ]);
  });
});

it('maintenance workflow id is per collection and UTC day', () => {
  expect(milvusMaintenanceWorkflowId('item_embeddings', new Date('2026-11-26T23:59:59Z'))).toBe(
    'milvus-maintenance/item_embeddings/2026-11-26',
  );
});
