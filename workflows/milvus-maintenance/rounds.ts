import { log, sleep } from '@temporalio/workflow';
import { failure, FailureType } from '../../common/failures';
import type { MaintenanceRun, SegmentFacts } from './index';

/** Segments, persisted rows and live entities from a collection's stats (none for a missing one). */
export function facts(
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

/** What the compaction rounds did, and what the stats after the latest one show. */
export interface Rounds {
  readonly compactionIds: string[];
  readonly merges: { compactionId: string; sources: string[]; target: string }[];
  polls: number;
  state: { state: string; failedPlans: number; timedOutPlans: number };
  after: SegmentFacts;
  pending: number | null;
  pendingReason: string | null;
}

/**
 * Flush + compaction rounds until no deleted rows are pending purge or another round cannot help
 * (see whyStop). Deletes that arrived after a round's flush, or segments a plan left out (in
 * another compaction, index not built yet), are for the next round: a durable timer before it
 * gives them time to settle.
 */
export async function compactUntilPurged(run: MaintenanceRun, before: SegmentFacts): Promise<Rounds> {
  const rounds: Rounds = {
    compactionIds: [],
    merges: [],
    polls: 0,
    state: { state: 'Undefined', failedPlans: 0, timedOutPlans: 0 },
    after: before,
    pending: null,
    pendingReason: null,
  };
  for (let round = 1; ; round++) {
    const plannedMerges = await compactionRound(run, rounds, round);
    const stop = whyStop(run, rounds, round, plannedMerges);
    if (stop) {
      rounds.pendingReason = stop.reason;
      return rounds;
    }
    log.info(`${rounds.pending} deleted rows still pending purge after round ${round}: another round`, {
      collection: run.collection,
      compactionId: lastOf(rounds.compactionIds),
    });
    run.phase('waiting-round', { round });
    await sleep(run.roundWaitMs);
  }
}

/** One round: flush, compaction, its plans and the stats after; returns how many merges it planned. */
async function compactionRound(run: MaintenanceRun, rounds: Rounds, round: number): Promise<number> {
  const { collection } = run;
  run.phase('flush', { round });
  // Returns once everything written before it, buffered deletes included, is persisted: a
  // compaction planned earlier would not see those deletes and keep the rows.
  await run.short(`flush ${collection}`).milvusFlush({ collection });

  run.phase('compact', { round });
  const { compactionId } = await run
    .short(`start a compaction of ${collection}`)
    .milvusStartCompaction({ collection });
  rounds.compactionIds.push(compactionId);
  run.phase('waiting-compaction', { compactionId });
  const state = await waitForCompaction(run, rounds, compactionId);
  rounds.state = state;

  run.phase('stats-after', {
    compactionPolls: rounds.polls,
    executingPlans: 0,
    completedPlans: state.completedPlans,
  });
  const plans = await run
    .short(`merge plans of compaction ${compactionId}`)
    .milvusCompactionPlans({ compactionId });
  rounds.merges.push(...plans.merges.map((m) => ({ compactionId, ...m })));
  rounds.after = facts(await run.stats());
  rounds.pending = pendingOf(rounds.after);
  run.phase('stats-after', { pendingDeletedRows: rounds.pending });
  return plans.merges.length;
}

/** Polls the compaction's state on a durable timer until it completes; past the deadline, TimedOut. */
async function waitForCompaction(run: MaintenanceRun, rounds: Rounds, compactionId: string) {
  const poll = async () => {
    const s = await run.short(`state of compaction ${compactionId}`).milvusCompactionState({ compactionId });
    rounds.polls++;
    return s;
  };
  let s = await poll();
  while (s.state !== 'Completed') {
    run.phase('waiting-compaction', {
      compactionPolls: rounds.polls,
      executingPlans: s.executingPlans,
      completedPlans: s.completedPlans,
    });
    if (Date.now() >= run.deadline) {
      throw failure(
        FailureType.TimedOut,
        `compaction ${compactionId} of Milvus collection ${run.collection} still ${s.state} after ${run.deadlineMinutes} min`,
      );
    }
    await sleep(run.pollMs);
    s = await poll();
  }
  return s;
}

/** Why no further round runs (reason null: nothing is pending), or undefined when another round can help. */
function whyStop(
  run: MaintenanceRun,
  rounds: Rounds,
  round: number,
  plannedMerges: number,
): { reason: string | null } | undefined {
  const { pending, after, state } = rounds;
  if (pending === 0) return { reason: null };
  if (pending === null) {
    return {
      reason:
        after.entities === null
          ? 'live entity count unknown: collection not loaded'
          : `more live entities (${after.entities}) than persisted rows (${after.rows}): writes during maintenance`,
    };
  }
  const failed = state.failedPlans + state.timedOutPlans;
  const failedNote = failed ? `, ${failed} compaction plan(s) failed or timed out` : '';
  // Nothing planned: another request now would plan nothing either (no flushed segment, all
  // busy in another compaction, or not indexed yet); stop and say so rather than spin.
  if (plannedMerges === 0) return { reason: `Milvus planned no compaction in round ${round}${failedNote}` };
  if (round >= run.maxRounds)
    return { reason: `still there after ${round} compaction round(s)${failedNote}` };
  if (Date.now() + run.roundWaitMs >= run.deadline) {
    return {
      reason: `the ${run.deadlineMinutes} min deadline leaves no time for round ${round + 1}${failedNote}`,
    };
  }
  return undefined;
}

export function lastOf<T>(items: readonly T[]): T {
  return items[items.length - 1]!;
}
