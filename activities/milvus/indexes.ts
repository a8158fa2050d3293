import { DataType, ErrorCode, IndexState, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { failure, FailureType } from '../../common/failures';
import type { IndexSpec } from './advisor';
import { ensureOk } from './client';

export interface LiveIndex extends IndexSpec {
  readonly name: string;
  readonly field: string;
  readonly state: string;
  readonly indexedRows: number;
  readonly totalRows: number;
  readonly pendingRows: number;
  readonly failReason: string;
}

function parseParams(pairs: readonly { key: string; value: string | number }[]): {
  indexType: string;
  metric: string;
  params: Record<string, number>;
} {
  let indexType = '';
  let metric = '';
  const params: Record<string, number> = {};
  for (const pair of pairs) {
    const key = pair.key;
    const value = String(pair.value);
    if (key === 'index_type') indexType = value;
    else if (key === 'metric_type') metric = value;
    else if (key === 'params') {
      try {
        for (const [k, v] of Object.entries(JSON.parse(value) as Record<string, unknown>))
          params[k] = Number(v);
      } catch {
        /* not JSON: ignore, the flattened keys below cover it */
      }
    } else if (value !== '' && !Number.isNaN(Number(value))) params[key] = Number(value);
  }
  return { indexType, metric, params };
}

/** The index on `field`, or undefined when there is none. */
export async function describeVectorIndex(
  client: MilvusClient,
  collection: string,
  field: string,
): Promise<LiveIndex | undefined> {
  const res = await client.describeIndex({ collection_name: collection, field_name: field });
  if (
    res.status.error_code === ErrorCode.IndexNotExist ||
    /index not (exist|found)/i.test(res.status.reason)
  ) {
    return undefined;
  }
  ensureOk(res, `describeIndex on ${collection}.${field}`);
  const d = res.index_descriptions.find((x) => x.field_name === field);
  if (!d) return undefined;
  return {
    ...parseParams(d.params),
    name: d.index_name,
    field: d.field_name,
    state: String(d.state),
    indexedRows: Number(d.indexed_rows ?? 0),
    totalRows: Number(d.total_rows ?? 0),
    pendingRows: Number(d.pending_index_rows ?? 0),
    failReason: d.index_state_fail_reason ?? '',
  };
}

export async function createVectorIndex(
  client: MilvusClient,
  collection: string,
  field: string,
  spec: IndexSpec,
): Promise<void> {
  const res = await client.createIndex({
    collection_name: collection,
    field_name: field,
    index_name: `${field}_idx`,
    index_type: spec.indexType,
    metric_type: spec.metric,
    params: { ...spec.params },
  });
  ensureOk(res, `createIndex ${spec.indexType} on ${collection}.${field}`, FailureType.Misconfigured);
}

/** Waits (polling, with `onPoll` for heartbeats) until the index on `field` is built. */
export async function waitIndexBuilt(
  client: MilvusClient,
  collection: string,
  field: string,
  onPoll: (indexed: number, total: number) => void,
  timeoutMs = 30 * 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const live = await describeVectorIndex(client, collection, field);
    if (!live)
      throw failure(FailureType.NotFound, `index on ${collection}.${field} disappeared while building`);
    onPoll(live.indexedRows, live.totalRows);
    if (live.state === 'Finished' || live.state === String(IndexState.Finished)) return;
    if (live.state === 'Failed' || live.state === String(IndexState.Failed)) {
      throw failure(
        FailureType.Misconfigured,
        `index build on ${collection}.${field} failed: ${live.failReason}`,
      );
    }
    if (Date.now() > deadline) {
      throw failure(
        FailureType.TimedOut,
        `index on ${collection}.${field} not built after ${timeoutMs / 1000} s`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

export function vectorFieldOf(fields: readonly { name: string; data_type: string }[]): string | undefined {
  return fields.find((f) => f.data_type === 'FloatVector' || f.data_type === DataType[DataType.FloatVector])
    ?.name;
}
