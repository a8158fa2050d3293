import { log, setHandler } from '@temporalio/workflow';
import type { MilvusActivities } from '../../activities/milvus';
import type { NotifyActivities } from '../../activities/notify';
import { failure, FailureType, rootMessage } from '../../common/failures';
import { activitiesWith } from '../activity-profiles';
import { milvusMaintenanceProgressQuery, type MilvusMaintenanceProgress } from '../milvus-messages';
import { compactUntilPurged, facts, lastOf, type Rounds } from './rounds';

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

/**
 * Nightly Milvus upkeep for one collection: flush (waits until deletes too are persisted) → manual
 * compaction → wait for it with durable timers (no busy loop inside an activity) → stats; while
 * persisted rows still exceed live entities, wait and run another flush + compaction round, bounded
 * by maxCompactionRounds and the deadline → optional index rebuild → summary. The summary reports
 * what the stats show: deleted rows still pending purge are named, never implied purged.
 * Each activity is idempotent: a retried flush flushes nothing new, a repeated compaction request
 * rewrites the same data, and the state polls only read. The rounds are in rounds.ts.
 */
export async function milvusMaintenanceWorkflow(
  input: MilvusMaintenanceInput,
): Promise<MilvusMaintenanceResult> {
  const run = new MaintenanceRun(input);
  try {
    run.checkInput();
    const before = await statsBefore(run);
    const rounds = await compactUntilPurged(run, before);
    const index = await maintainIndex(run);
    const summary = summaryOf(run, before, rounds, index);
    await report(run, before, rounds, summary);
    run.phase('done');
    return {
      collection: run.collection,
      compactionId: lastOf(rounds.compactionIds),
      compactionState: rounds.state.state,
      compactionIds: rounds.compactionIds,
      compactionRounds: rounds.compactionIds.length,
      compactionPolls: rounds.polls,
      merges: rounds.merges,
      before,
      after: rounds.after,
      pendingDeletedRows: rounds.pending,
      pendingReason: rounds.pendingReason,
      indexDrift: index.drift,
      indexRebuilt: index.rebuilt,
      durationMs: Date.now() - run.started,
      summary,
    };
  } catch (err) {
    run.phase('failed');
    await run
      .notify()
      .notifySlack({ text: `:x: Milvus maintenance of ${run.collection} failed: ${rootMessage(err)}` })
      .catch(() => undefined);
    throw err;
  }
}

/** One maintenance run: its settings with their defaults, its progress (the query's answer), its activities. */
export class MaintenanceRun {
  readonly started = Date.now();
  readonly collection: string;
  readonly deadlineMinutes: number;
  /** No compaction is waited for, and no round started, past this time. */
  readonly deadline: number;
  readonly pollMs: number;
  readonly maxRounds: number;
  readonly roundWaitMs: number;
  progress: MilvusMaintenanceProgress;
  private readonly retry: { retry?: { maximumAttempts: number } };

  constructor(readonly input: MilvusMaintenanceInput) {
    this.retry = input.maximumAttempts ? { retry: { maximumAttempts: input.maximumAttempts } } : {};
    this.collection = input.collection;
    this.deadlineMinutes = input.deadlineMinutes ?? 30;
    this.deadline = this.started + this.deadlineMinutes * 60_000;
    this.pollMs = (input.pollSeconds ?? 5) * 1000;
    this.maxRounds = input.maxCompactionRounds ?? 3;
    this.roundWaitMs = (input.roundWaitSeconds ?? 60) * 1000;
    this.progress = {
      collection: input.collection,
      phase: 'starting',
      round: 0,
      compactionId: null,
      compactionPolls: 0,
      executingPlans: 0,
      completedPlans: 0,
      pendingDeletedRows: null,
    };
    setHandler(milvusMaintenanceProgressQuery, () => this.progress);
  }

  checkInput(): void {
    if (!Number.isInteger(this.maxRounds) || this.maxRounds < 1)
      throw failure(
        FailureType.InvalidInput,
        `maxCompactionRounds ${this.maxRounds}: must be an integer >= 1`,
      );
    if (!(this.roundWaitMs >= 0))
      throw failure(
        FailureType.InvalidInput,
        `roundWaitSeconds ${this.input.roundWaitSeconds}: must be >= 0`,
      );
  }

  phase(p: MilvusMaintenanceProgress['phase'], extra: Partial<MilvusMaintenanceProgress> = {}): void {
    this.progress = { ...this.progress, ...extra, phase: p };
  }

  short(summary: string) {
    return activitiesWith<MilvusActivities>('short', { summary, ...this.retry });
  }

  streaming(summary: string) {
    return activitiesWith<MilvusActivities>('streaming', { summary, ...this.retry });
  }

  notify() {
    return activitiesWith<NotifyActivities>('notify', {
      summary: `Slack: Milvus maintenance of ${this.collection}`,
    });
  }

  async stats() {
    const [stats] = await this.short(`stats of ${this.collection}`).milvusStats({
      collections: [this.collection],
    });
    return stats;
  }
}

async function statsBefore(run: MaintenanceRun): Promise<SegmentFacts> {
  run.phase('stats-before');
  const stats = await run.stats();
  if (!stats?.exists)
    throw failure(FailureType.NotFound, `Milvus collection ${run.collection} does not exist`);
  return facts(stats);
}

/** Asks the advisor whether the vector index drifted; rebuilds it only when the input allows. */
async function maintainIndex(run: MaintenanceRun): Promise<{ drift: readonly string[]; rebuilt: boolean }> {
  const { collection } = run;
  run.phase('advise');
  const advice = await run.short(`advise the index of ${collection}`).milvusAdvise({ collection });
  if (!advice.drift.length || !run.input.rebuildIndexOnDrift) return { drift: advice.drift, rebuilt: false };
  run.phase('rebuild-index');
  await run.streaming(`rebuild the index of ${collection}`).milvusRebuildIndex({ collection });
  return { drift: advice.drift, rebuilt: true };
}

function summaryOf(
  run: MaintenanceRun,
  b: SegmentFacts,
  rounds: Rounds,
  index: { drift: readonly string[]; rebuilt: boolean },
): string {
  const { pending, pendingReason, after: a } = rounds;
  const pendingText =
    pending === 0
      ? 'no deleted rows pending purge'
      : pending === null
        ? `deleted rows pending purge unknown (${pendingReason})`
        : `${pending} deleted rows still pending purge (${pendingReason})`;
  return (
    `Milvus maintenance of ${run.collection}: ${rounds.compactionIds.length} compaction round(s), last ${lastOf(rounds.compactionIds)} ${rounds.state.state} ` +
    `(${rounds.merges.length} merge plan(s) in all); segments ${b.segments} → ${a.segments}, ` +
    `persisted rows ${b.rows} → ${a.rows}, live entities ${a.entities ?? '?'}; ${pendingText}` +
    (index.drift.length
      ? `; index drift: ${index.drift.join('; ')}${index.rebuilt ? ' (rebuilt)' : ' (not rebuilt)'}`
      : '; index as advised')
  );
}

/** Logs the summary (a warning while rows are pending) and posts it to Slack. */
async function report(run: MaintenanceRun, b: SegmentFacts, rounds: Rounds, summary: string): Promise<void> {
  const { pending, after: a } = rounds;
  if (pending === 0) log.info(summary);
  else log.warn(summary);
  run.phase('notify');
  // Best effort: notifySlack reports, never throws, when Slack is down or not configured.
  await run.notify().notifySlack({
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
        value: `${rounds.compactionIds.length} round(s), last ${lastOf(rounds.compactionIds)} ${rounds.state.state}, ${rounds.merges.length} merge plan(s)`,
      },
    ],
  });
}
