import { DataType, LoadState, type FieldType, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { failure, FailureType } from '../../common/failures';
import { adviseIndex, indexDrift, type IndexAdvice, type IndexType, type Metric } from './advisor';
import { ensureOk } from './client';
import type { CollectionSpec, FieldSpec } from './collections';
import {
  createVectorIndex,
  describeVectorIndex,
  vectorFieldOf,
  waitIndexBuilt,
  type LiveIndex,
} from './indexes';
import { diffSchema, type FieldDifference } from './schema-diff';
import { collectionStats } from './stats';

export interface IndexPolicy {
  readonly indexType: IndexType;
  readonly metric: Metric;
}

export interface EnsureResult {
  readonly collection: string;
  readonly collectionAction: 'created' | 'unchanged' | 'drifted';
  readonly differences: readonly FieldDifference[];
  readonly indexAction: 'created' | 'unchanged' | 'differs' | 'skipped';
  readonly indexNotes: readonly string[];
  readonly loadAction: 'loaded' | 'unchanged' | 'skipped';
}

function toFieldType(f: FieldSpec): FieldType {
  const base: FieldType = {
    name: f.name,
    description: f.description,
    data_type: DataType[f.type],
    is_primary_key: Boolean(f.primaryKey),
    autoID: false,
  };
  if (f.maxLength !== undefined) base.max_length = f.maxLength;
  if (f.dim !== undefined) base.dim = f.dim;
  return base;
}

async function exists(client: MilvusClient, name: string): Promise<boolean> {
  const res = ensureOk(await client.hasCollection({ collection_name: name }), `hasCollection ${name}`);
  return Boolean(res.value);
}

/** Size facts for the advisor: flushed rows and segments (growing data is not indexed yet). */
export async function sizeFacts(
  client: MilvusClient,
  name: string,
): Promise<{ rows: number; segments: number }> {
  const stats = await collectionStats(client, name);
  return { rows: stats.persistentSegments.rows, segments: stats.persistentSegments.count };
}

/** Creates the collection, its vector index and loads it, each only if missing. Never drops anything. */
export async function ensureCollection(
  client: MilvusClient,
  spec: CollectionSpec,
  policy: IndexPolicy,
): Promise<EnsureResult> {
  let collectionAction: EnsureResult['collectionAction'] = 'unchanged';
  let differences: FieldDifference[] = [];
  if (!(await exists(client, spec.name))) {
    const res = await client.createCollection({
      collection_name: spec.name,
      description: spec.description,
      consistency_level: spec.consistency,
      fields: spec.fields.map(toFieldType),
    });
    ensureOk(res, `createCollection ${spec.name}`, FailureType.Misconfigured);
    collectionAction = 'created';
  } else {
    const described = ensureOk(
      await client.describeCollection({ collection_name: spec.name }),
      `describeCollection ${spec.name}`,
    );
    differences = diffSchema(spec, {
      fields: described.schema.fields,
      consistency: described.consistency_level,
    });
    if (differences.length) collectionAction = 'drifted';
  }
  if (collectionAction === 'drifted') {
    return {
      collection: spec.name,
      collectionAction,
      differences,
      indexAction: 'skipped',
      indexNotes: [],
      loadAction: 'skipped',
    };
  }

  const advice = adviseIndex(policy.indexType, policy.metric, await sizeFacts(client, spec.name));
  const current = await describeVectorIndex(client, spec.name, spec.vectorField);
  let indexAction: EnsureResult['indexAction'] = 'unchanged';
  let indexNotes: string[] = [];
  if (!current) {
    await createVectorIndex(client, spec.name, spec.vectorField, advice.index);
    indexAction = 'created';
    indexNotes = [...advice.reasons];
  } else {
    indexNotes = indexDrift(current, advice.index);
    if (indexNotes.length) indexAction = 'differs';
  }

  const load = ensureOk(
    await client.getLoadState({ collection_name: spec.name }),
    `getLoadState ${spec.name}`,
  );
  let loadAction: EnsureResult['loadAction'] = 'unchanged';
  if (load.state !== LoadState.LoadStateLoaded) {
    ensureOk(await client.loadCollectionSync({ collection_name: spec.name }), `loadCollection ${spec.name}`);
    loadAction = 'loaded';
  }
  return { collection: spec.name, collectionAction, differences, indexAction, indexNotes, loadAction };
}

export interface IndexReport {
  readonly collection: string;
  readonly vectorField: string;
  readonly size: { rows: number; segments: number };
  readonly current: LiveIndex | null;
  readonly advice: IndexAdvice;
  readonly drift: readonly string[];
}

async function vectorFieldFor(client: MilvusClient, collection: string): Promise<string> {
  if (!(await exists(client, collection))) {
    throw failure(
      FailureType.NotFound,
      `Milvus collection ${collection} does not exist: run dbops milvus init`,
    );
  }
  const described = ensureOk(
    await client.describeCollection({ collection_name: collection }),
    `describeCollection ${collection}`,
  );
  const field = vectorFieldOf(described.schema.fields);
  if (!field)
    throw failure(FailureType.Misconfigured, `Milvus collection ${collection} has no FLOAT_VECTOR field`);
  return field;
}

export async function indexReport(
  client: MilvusClient,
  collection: string,
  policy: IndexPolicy,
): Promise<IndexReport> {
  const vectorField = await vectorFieldFor(client, collection);
  const size = await sizeFacts(client, collection);
  const advice = adviseIndex(policy.indexType, policy.metric, size);
  const current = (await describeVectorIndex(client, collection, vectorField)) ?? null;
  return {
    collection,
    vectorField,
    size,
    current,
    advice,
    drift: indexDrift(current ?? undefined, advice.index),
  };
}

/**
 * Replaces the vector index with the advised one: release (Milvus refuses to drop the index of a
 * loaded collection), drop, create, wait for the build, load. Safe to retry from any step.
 */
export async function rebuildIndex(
  client: MilvusClient,
  collection: string,
  policy: IndexPolicy,
  onProgress: (phase: string, indexed?: number, total?: number) => void,
): Promise<IndexReport> {
  const before = await indexReport(client, collection, policy);
  const field = before.vectorField;
  onProgress('release');
  ensureOk(
    await client.releaseCollection({ collection_name: collection }),
    `releaseCollection ${collection}`,
  );
  if (before.current) {
    onProgress('drop');
    ensureOk(
      await client.dropIndex({
        collection_name: collection,
        field_name: field,
        index_name: before.current.name,
      }),
      `dropIndex ${before.current.name} on ${collection}`,
    );
  }
  onProgress('create');
  await createVectorIndex(client, collection, field, before.advice.index);
  await waitIndexBuilt(client, collection, field, (indexed, total) => onProgress('build', indexed, total));
  onProgress('load');
  ensureOk(await client.loadCollectionSync({ collection_name: collection }), `loadCollection ${collection}`);
  return indexReport(client, collection, policy);
}
