import { log, setHandler, sleep } from '@temporalio/workflow';
import type { MilvusActivities } from '../activities/milvus';
import type { NotifyActivities } from '../activities/notify';
import { failure, FailureType, rootMessage } from '../common/failures';
import { activitiesWith } from './activity-profiles';
import { milvusMaintenanceProgressQuery, type MilvusMaintenanceProgress } from './milvus-messages';

export interface MilvusMaintenanceInput {
  readonly collection: string;
  /** Give up waiting for the compaction after this long (default 30); no new round starts after it. */
  readonly deadlineMinutes?: number;
  /** Durable timer between compaction state polls (default 5). */
  readonly pollSeconds?: number;
  /**
   * Flush + compaction rounds at most (default 3). Another round runs only while persisted rows
   * still exceed live entities, i.e. deleted rows are not purged yet.
   */
  readonly maxCompactionRounds?: number;
  /** Durable timer before another round (default 60). */
  readonly roundWaitSeconds?: number;
  /** Rebuild the vector index when the advisor says it drifted (default false: rebuild releases the collection). */
  readonly rebuildIndexOnDrift?: boolean;
  /** Tighter activity retries (tests). */
  readonly maximumAttempts?: number;
}

export interface SegmentFacts {
  readonly segments: number;
  readonly rows: number;
  readonly entities: number | null;
}

export interface MilvusMaintenanceResult {
  readonly collection: string;
  /** The last round's compaction (all of them in compactionIds). */
  readonly compactionId: string;
  readonly compactionState: string;
  readonly compactionIds: readonly string[];
  readonly compactionRounds: number;
  /** State polls over all rounds; each poll after a round's first one waited on a durable timer. */
  readonly compactionPolls: number;
  readonly merges: readonly { compactionId: string; sources: string[]; target: string }[];
  readonly before: SegmentFacts;
  readonly after: SegmentFacts;
  /**
   * Deleted rows the compactions did not purge: persisted rows − live entities after the last round.
   * null when unknown (collection not loaded, or more live entities than persisted rows because
   * writes arrived during maintenance).
   */
  readonly pendingDeletedRows: number | null;
  /** Why rows are still pending or their number is unknown; null when none are pending. */
  readonly pendingReason: string | null;
  readonly indexDrift: readonly string[];
  readonly indexRebuilt: boolean;
  readonly durationMs: number;
  readonly summary: string;
}

function facts(
  s: { persistentSegments: { count: number; rows: number }; liveEntities: number | null } | undefined,
): SegmentFacts {
  return {
    segments: s?.persistentSegments.count ?? 0,
    rows: s?.persistentSegments.rows ?? 0,
    entities: s?.liveEntities ?? null,
  };
}

/**
 * Deleted rows still in persisted segments. Persisted rows count deleted rows until a compaction
 * rewrites their segment; count(*) does not. Fewer persisted rows than entities means unflushed
 * inserts, which hide any deletes in the difference: unknown.
 */
function pendingOf(f: SegmentFacts): number | null {
  if (f.entities === null || f.rows < f.entities) return null;
  return f.rows - f.entities;
}

/**
 * Nightly Milvus upkeep for one collection: flush (waits until deletes too are persisted) → manual
 * compaction → wait for it with durable timers (no busy loop inside an activity) → stats; while
 * persisted rows still exceed live entities, wait and run another flush + compaction round, bounded
 * by maxCompactionRounds and the deadline → optional index rebuild → summary. The summary reports
 * what the stats show: deleted rows still pending purge are named, never implied purged.
 * Each activity is idempotent: a retried flush flushes nothing new, a repeated compaction request
 * rewrites the same data, and the state polls only read.
 */
export async function milvusMaintenanceWorkflow(
  input: MilvusMaintenanceInput,
): Promise<MilvusMaintenanceResult> {
  const started = Date.now();
  const retry = input.maximumAttempts ? { retry: { maximumAttempts: input.maximumAttempts } } : {};
  const short = activitiesWith<MilvusActivities>('short', retry);
  const streaming = activitiesWith<MilvusActivities>('streaming', retry);
  const { notifySlack } = activitiesWith<NotifyActivities>('notify');
  const deadlineMinutes = input.deadlineMinutes ?? 30;
  const pollMs = (input.pollSeconds ?? 5) * 1000;
  const maxRounds = input.maxCompactionRounds ?? 3;
  const roundWaitMs = (input.roundWaitSeconds ?? 60) * 1000;
  const { collection } = input;

  let progress: MilvusMaintenanceProgress = {
    collection,
    phase: 'starting',
    round: 0,
    compactionId: null,
    compactionPolls: 0,
    executingPlans: 0,
    completedPlans: 0,
    pendingDeletedRows: null,
  };
  setHandler(milvusMaintenanceProgressQuery, () => progress);
  const phase = (p: MilvusMaintenanceProgress['phase'], extra: Partial<MilvusMaintenanceProgress> = {}) => {
    progress = { ...progress, ...extra, phase: p };
  };

  try {
    if (!Number.isInteger(maxRounds) || maxRounds < 1)
      throw failure(FailureType.InvalidInput, `maxCompactionRounds ${maxRounds}: must be an integer >= 1`);
    if (!(roundWaitMs >= 0))
      throw failure(FailureType.InvalidInput, `roundWaitSeconds ${input.roundWaitSeconds}: must be >= 0`);

    phase('stats-before');
    const [beforeStats] = await short.milvusStats({ collections: [collection] });
    if (!beforeStats?.exists)
      throw failure(FailureType.NotFound, `Milvus collection ${collection} does not exist`);
    const b = facts(beforeStats);

    const deadline = started + deadlineMinutes * 60_000;
    const compactionIds: string[] = [];
    const merges: { compactionId: string; sources: string[]; target: string }[] = [];
    let polls = 0;
    let state = { state: 'Undefined', failedPlans: 0, timedOutPlans: 0 };
    let a: SegmentFacts = b;
    let pending: number | null = null;
    let pendingReason: string | null = null;

    for (let round = 1; ; round++) {
      phase('flush', { round });
      // Returns once everything written before it, buffered deletes included, is persisted: a
      // compaction planned earlier would not see those deletes and keep the rows.
      await short.milvusFlush({ collection });

      phase('compact', { round });
      const { compactionId } = await short.milvusStartCompaction({ collection });
      compactionIds.push(compactionId);
      phase('waiting-compaction', { compactionId });

      let s = await short.milvusCompactionState({ compactionId });
      polls++;
      while (s.state !== 'Completed') {
        phase('waiting-compaction', {
          compactionPolls: polls,
          executingPlans: s.executingPlans,
          completedPlans: s.completedPlans,
        });
        if (Date.now() >= deadline) {
          throw failure(
            FailureType.TimedOut,
            `compaction ${compactionId} of Milvus collection ${collection} still ${s.state} after ${deadlineMinutes} min`,
          );
        }
        await sleep(pollMs);
        s = await short.milvusCompactionState({ compactionId });
        polls++;
      }
      state = s;
      phase('stats-after', { compactionPolls: polls, executingPlans: 0, completedPlans: s.completedPlans });
      const plans = await short.milvusCompactionPlans({ compactionId });
      merges.push(...plans.merges.map((m) => ({ compactionId, ...m })));
      const [afterStats] = await short.milvusStats({ collections: [collection] });
      a = facts(afterStats);
      pending = pendingOf(a);
      phase('stats-after', { pendingDeletedRows: pending });

      if (pending === 0) {
        pendingReason = null;
        break;
      }
      if (pending === null) {
        pendingReason =
          a.entities === null
            ? 'live entity count unknown: collection not loaded'
            : `more live entities (${a.entities}) than persisted rows (${a.rows}): writes during maintenance`;
        break;
      }
      const failed = s.failedPlans + s.timedOutPlans;
      const failedNote = failed ? `, ${failed} compaction plan(s) failed or timed out` : '';
      // Nothing planned: another request now would plan nothing either (no flushed segment, all
      // busy in another compaction, or not indexed yet); stop and say so rather than spin.
      if (plans.merges.length === 0) {
        pendingReason = `Milvus planned no compaction in round ${round}${failedNote}`;
        break;
      }
      if (round >= maxRounds) {
        pendingReason = `still there after ${round} compaction round(s)${failedNote}`;
        break;
      }
      if (Date.now() + roundWaitMs >= deadline) {
        pendingReason = `the ${deadlineMinutes} min deadline leaves no time for round ${round + 1}${failedNote}`;
        break;
      }
      // Deletes that arrived after this round's flush, or segments a plan left out (in another
      // compaction, index not built yet), are for the next round: give them time to settle.
      log.info(`${pending} deleted rows still pending purge after round ${round}: another round`, {
        collection,
        compactionId,
      });
      phase('waiting-round', { round });
      await sleep(roundWaitMs);
    }

    phase('advise');
    const advice = await short.milvusAdvise({ collection });
    let indexRebuilt = false;
    if (advice.drift.length && input.rebuildIndexOnDrift) {
      phase('rebuild-index');
      await streaming.milvusRebuildIndex({ collection });
      indexRebuilt = true;
    }

    const rounds = compactionIds.length;
    const compactionId = compactionIds[rounds - 1]!;
    const pendingText =
      pending === 0
        ? 'no deleted rows pending purge'
        : pending === null
          ? `deleted rows pending purge unknown (${pendingReason})`
          : `${pending} deleted rows still pending purge (${pendingReason})`;
    const summary =
      `Milvus maintenance of ${collection}: ${rounds} compaction round(s), last ${compactionId} ${state.state} ` +
      `(${merges.length} merge plan(s) in all); segments ${b.segments} → ${a.segments}, ` +
      `persisted rows ${b.rows} → ${a.rows}, live entities ${a.entities ?? '?'}; ${pendingText}` +
      (advice.drift.length
        ? `; index drift: ${advice.drift.join('; ')}${indexRebuilt ? ' (rebuilt)' : ' (not rebuilt)'}`
        : '; index as advised');
    if (pending === 0) log.info(summary);
    else log.warn(summary);
    phase('notify');
    // Best effort: notifySlack reports, never throws, when Slack is down or not configured.
    await notifySlack({
      text: `${pending === 0 ? ':broom:' : ':warning:'} ${summary}`,
      fields: [
        { title: 'Segments', value: `${b.segments} → ${a.segments}` },
        { title: 'Entities', value: `${b.entities ?? '?'} → ${a.entities ?? '?'}` },
        {
          title: 'Pending purge',
          value: pending === null ? 'unknown' : `${pending} deleted rows`,
        },
        {
          title: 'Compaction',
          value: `${rounds} round(s), last ${compactionId} ${state.state}, ${merges.length} merge plan(s)`,
        },
      ],
    });
    phase('done');
    return {
      collection,
      compactionId,
      compactionState: state.state,
      compactionIds,
      compactionRounds: rounds,
      compactionPolls: polls,
      merges,
      before: b,
      after: a,
      pendingDeletedRows: pending,
      pendingReason,
      indexDrift: advice.drift,
      indexRebuilt,
      durationMs: Date.now() - started,
      summary,
    };
  } catch (err) {
    phase('failed');
    await notifySlack({ text: `:x: Milvus maintenance of ${collection} failed: ${rootMessage(err)}` }).catch(
      () => undefined,
    );
    throw err;
  }
}
