import { CompactionState, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { failure, FailureType } from '../../common/failures';
import { ensureOk } from './client';

async function requireCollection(client: MilvusClient, collection: string): Promise<void> {
  const has = ensureOk(
    await client.hasCollection({ collection_name: collection }),
    `hasCollection ${collection}`,
  );
  if (!has.value) throw failure(FailureType.NotFound, `Milvus collection ${collection} does not exist`);
}

/** Seals growing segments and waits until they are persisted (flushSync polls the flush state). */
export async function flushCollection(
  client: MilvusClient,
  collection: string,
): Promise<{ flushed: boolean }> {
  await requireCollection(client, collection);
  const res = ensureOk(await client.flushSync({ collection_names: [collection] }), `flush ${collection}`);
  return { flushed: res.flushed !== false };
}

/** Starts a manual compaction; Milvus plans merges of small segments and purges deleted rows. */
export async function startCompaction(
  client: MilvusClient,
  collection: string,
): Promise<{ compactionId: string }> {
  await requireCollection(client, collection);
  const res = ensureOk(await client.compact({ collection_name: collection }), `compact ${collection}`);
  return { compactionId: String(res.compactionID) };
}

export interface CompactionStatus {
  readonly compactionId: string;
  readonly state: 'Executing' | 'Completed' | 'Undefined';
  readonly executingPlans: number;
  readonly completedPlans: number;
  readonly timedOutPlans: number;
}

export async function compactionStatus(
  client: MilvusClient,
  compactionId: string,
): Promise<CompactionStatus> {
  const res = ensureOk(
    await client.getCompactionState({ compactionID: compactionId }),
    `getCompactionState ${compactionId}`,
  );
  const raw = res.state as unknown;
  const state =
    raw === CompactionState.Completed || raw === 'Completed'
      ? 'Completed'
      : raw === CompactionState.Executing || raw === 'Executing'
        ? 'Executing'
        : 'Undefined';
  return {
    compactionId,
    state,
    executingPlans: Number(res.executingPlanNo ?? 0),
    completedPlans: Number(res.completedPlanNo ?? 0),
    timedOutPlans: Number(res.timeoutPlanNo ?? 0),
  };
}

export interface CompactionPlans {
  readonly compactionId: string;
  readonly state: string;
  readonly merges: readonly { sources: string[]; target: string }[];
}

export async function compactionPlans(client: MilvusClient, compactionId: string): Promise<CompactionPlans> {
  const res = ensureOk(
    await client.getCompactionStateWithPlans({ compactionID: compactionId }),
    `getCompactionStateWithPlans ${compactionId}`,
  );
  return {
    compactionId,
    state: String(res.state),
    merges: (res.mergeInfos ?? []).map((m) => ({ sources: m.sources.map(String), target: String(m.target) })),
  };
}
