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

export interface FlushOutcome {
  readonly flushed: true;
  /** Hybrid timestamp (TSO) of the flush: every insert and delete before it is now persisted. */
  readonly flushTs: string;
  /** Growing segments the flush sealed (0 when only buffered deletes were pending). */
  readonly sealedSegments: number;
  readonly polls: number;
  readonly waitedMs: number;
}

/** Default bound of the flush wait: inside the `short` activity profile's 2-minute start-to-close. */
const FLUSH_TIMEOUT_MS = 90_000;
const FLUSH_POLL_MS = 250;

/**
 * Seals growing segments and waits until everything written before the flush, deletes included,
 * is persisted, so that a compaction planned next sees it.
 *
 * Not the SDK's flushSync: it polls GetFlushState with the sealed segment ids only. Deletes of rows
 * in already-flushed segments sit in the datanode's delete buffer, not in any segment the flush
 * seals (coll_segIDs is then empty and flushSync returns at once); a compaction planned before the
 * datanode writes them as delta logs carries no delta logs, and the deleted rows survive it (the
 * flaky 3000-instead-of-2700 rows of test/integration/milvus-maintenance.test.ts). The deletes are
 * not lost: they land later as delta logs of the merged segment, and only a next compaction purges
 * them.
 *
 * Milvus 2.3 (internal/datacoord/services.go GetFlushState): with flush_ts and collection_name,
 * flushed is true only when the listed segments are flushed AND every channel checkpoint of the
 * collection has reached flush_ts. The datanode's channel checkpoint is the oldest start position of
 * any insert or delete buffer still in memory (internal/datanode/channel_meta.go
 * getChannelCheckpoint), and the flush makes it sync every non-empty buffer once the channel's time
 * tick passes flush_ts (syncSegmentsAtTs). So flushed=true means the deletes are delta logs recorded
 * in the segments' meta, which is what the compaction plan copies (segmentsToPlan: Deltalogs).
 */
export async function flushCollection(
  client: MilvusClient,
  collection: string,
  /** Called between polls: the activity's heartbeat, which also delivers cancellation. */
  onPoll: (details: { phase: 'flush'; polls: number; waitedMs: number }) => void,
  timeoutMs = FLUSH_TIMEOUT_MS,
): Promise<FlushOutcome> {
  await requireCollection(client, collection);
  const res = ensureOk(await client.flush({ collection_names: [collection] }), `flush ${collection}`);
  // FlushResponse (milvus.proto): coll_segIDs and coll_flush_ts, keyed by collection name; the
  // SDK's FlushResult type declares coll_segIDs as any and lacks coll_flush_ts. uint64s arrive as
  // strings (the SDK loads the protos with longs: String).
  const flushRes = res as unknown as {
    coll_segIDs?: Record<string, { data?: (string | number)[] } | undefined>;
    coll_flush_ts?: Record<string, string | number | undefined>;
  };
  const segmentIDs = (flushRes.coll_segIDs?.[collection]?.data ?? []).map(String);
  const flushTs = flushRes.coll_flush_ts?.[collection];
  if (flushTs === undefined || String(flushTs) === '0') {
    throw failure(
      FailureType.Misconfigured,
      `Milvus returned no flush timestamp for ${collection} (an older server?): ` +
        'cannot confirm that buffered deletes are persisted before compaction',
    );
  }
  const started = Date.now();
  for (let polls = 1; ; polls++) {
    // GetFlushStateReq in the SDK's types lists segmentIDs only; the request message has all four
    // fields (segmentIDs, flush_ts, db_name, collection_name) and protobufjs sends them.
    const state = ensureOk(
      await client.getFlushState({
        segmentIDs,
        flush_ts: String(flushTs),
        collection_name: collection,
      } as unknown as Parameters<MilvusClient['getFlushState']>[0]),
      `getFlushState ${collection}`,
    );
    const waitedMs = Date.now() - started;
    if (state.flushed) {
      return { flushed: true, flushTs: String(flushTs), sealedSegments: segmentIDs.length, polls, waitedMs };
    }
    onPoll({ phase: 'flush', polls, waitedMs });
    if (waitedMs >= timeoutMs) {
      throw failure(
        FailureType.TimedOut,
        `flush of Milvus collection ${collection} not persisted after ${Math.round(waitedMs / 1000)} s ` +
          `(${polls} polls): ${segmentIDs.length} sealed segment(s) or buffered deletes before flush ts ` +
          `${String(flushTs)} still in the datanode's memory`,
      );
    }
    await new Promise((r) => setTimeout(r, FLUSH_POLL_MS));
  }
}

/**
 * Starts a manual compaction. In Milvus 2.3 (internal/datacoord/compaction_trigger.go) a manual
 * compaction is a forced global signal: generatePlans takes every healthy flushed segment that is
 * not compacting as a prioritized candidate (`force || ShouldDoSingleCompaction`), merges small
 * ones greedily and, "since this is priority compaction", plans even a lone segment. Each plan
 * carries the source segments' delta logs as recorded at planning time, and the merge drops the
 * rows they delete. The dataCoord.compaction.single.ratio.threshold (deleted rows >= 20 % of a
 * segment, ShouldDoSingleCompaction) gates only automatic compaction: on the dev stack's 2.3.5 a
 * manual compaction of one segment with 10 % deleted rows planned and purged them. A manual
 * compaction can still plan nothing (compactionPlanCount 0, no merge infos): no flushed segment,
 * all of them in another compaction, or, where indexBasedCompaction filters, none indexed yet.
 */
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
  /** Plans that failed (failedPlanNo, Milvus 2.3; 0 from older servers). */
  readonly failedPlans: number;
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
    // Not in the SDK's GetCompactionStateResponse type; in the 2.3 response message.
    failedPlans: Number((res as { failedPlanNo?: string | number }).failedPlanNo ?? 0),
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
