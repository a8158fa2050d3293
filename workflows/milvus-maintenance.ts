import { log, setHandler, sleep } from '@temporalio/workflow';
import type { MilvusActivities } from '../activities/milvus';
import type { NotifyActivities } from '../activities/notify';
import { failure, FailureType, rootMessage } from '../common/failures';
import { activitiesWith } from './activity-profiles';
import { milvusMaintenanceProgressQuery, type MilvusMaintenanceProgress } from './milvus-messages';

export interface MilvusMaintenanceInput {
  readonly collection: string;
  /** Give up waiting for the compaction after this long (default 30). */
  readonly deadlineMinutes?: number;
  /** Durable timer between compaction state polls (default 5). */
  readonly pollSeconds?: number;
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
  readonly compactionId: string;
  readonly compactionState: string;
  readonly compactionPolls: number;
  readonly merges: readonly { sources: string[]; target: string }[];
  readonly before: SegmentFacts;
  readonly after: SegmentFacts;
  readonly indexDrift: readonly string[];
  readonly indexRebuilt: boolean;
  readonly durationMs: number;
  readonly summary: string;
}

/**
 * Nightly Milvus upkeep for one collection: flush → manual compaction → wait for it with durable
 * timers (no busy loop inside an activity) → stats before/after → optional index rebuild → summary.
 * Each activity is idempotent: a retried flush flushes nothing new, a repeated compaction request
 * plans nothing when there is nothing to merge, and the state polls only read.
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
  const { collection } = input;

  let progress: MilvusMaintenanceProgress = {
    collection,
    phase: 'starting',
    compactionId: null,
    compactionPolls: 0,
    executingPlans: 0,
    completedPlans: 0,
  };
  setHandler(milvusMaintenanceProgressQuery, () => progress);
  const phase = (p: MilvusMaintenanceProgress['phase'], extra: Partial<MilvusMaintenanceProgress> = {}) => {
    progress = { ...progress, ...extra, phase: p };
  };

  try {
    phase('stats-before');
    const [before] = await short.milvusStats({ collections: [collection] });
    if (!before?.exists)
      throw failure(FailureType.NotFound, `Milvus collection ${collection} does not exist`);

    phase('flush');
    await short.milvusFlush({ collection });

    phase('compact');
    const { compactionId } = await short.milvusStartCompaction({ collection });
    phase('waiting-compaction', { compactionId });

    const deadline = started + deadlineMinutes * 60_000;
    let state = await short.milvusCompactionState({ compactionId });
    let polls = 1;
    while (state.state !== 'Completed') {
      phase('waiting-compaction', {
        compactionPolls: polls,
        executingPlans: state.executingPlans,
        completedPlans: state.completedPlans,
      });
      if (Date.now() >= deadline) {
        throw failure(
          FailureType.TimedOut,
          `compaction ${compactionId} of Milvus collection ${collection} still ${state.state} after ${deadlineMinutes} min`,
        );
      }
      await sleep(pollMs);
      state = await short.milvusCompactionState({ compactionId });
      polls++;
    }
    phase('stats-after', { compactionPolls: polls, executingPlans: 0, completedPlans: state.completedPlans });
    const plans = await short.milvusCompactionPlans({ compactionId });
    const [after] = await short.milvusStats({ collections: [collection] });

    phase('advise');
    const advice = await short.milvusAdvise({ collection });
    let indexRebuilt = false;
    if (advice.drift.length && input.rebuildIndexOnDrift) {
      phase('rebuild-index');
      await streaming.milvusRebuildIndex({ collection });
      indexRebuilt = true;
    }

    const facts = (s: typeof after): SegmentFacts => ({
      segments: s?.persistentSegments.count ?? 0,
      rows: s?.persistentSegments.rows ?? 0,
      entities: s?.liveEntities ?? null,
    });
    const b = facts(before);
    const a = facts(after);
    const summary =
      `Milvus maintenance of ${collection}: compaction ${compactionId} ${state.state} ` +
      `(${plans.merges.length} merge plan(s)); segments ${b.segments} → ${a.segments}, ` +
      `persisted rows ${b.rows} → ${a.rows}` +
      (advice.drift.length
        ? `; index drift: ${advice.drift.join('; ')}${indexRebuilt ? ' (rebuilt)' : ' (not rebuilt)'}`
        : '; index as advised');
    log.info(summary);
    phase('notify');
    // Best effort: notifySlack reports, never throws, when Slack is down or not configured.
    await notifySlack({
      text: `:broom: ${summary}`,
      fields: [
        { title: 'Segments', value: `${b.segments} → ${a.segments}` },
        { title: 'Entities', value: `${b.entities ?? '?'} → ${a.entities ?? '?'}` },
        {
          title: 'Compaction',
          value: `${compactionId} ${state.state}, ${plans.merges.length} merge plan(s)`,
        },
      ],
    });
    phase('done');
    return {
      collection,
      compactionId,
      compactionState: state.state,
      compactionPolls: polls,
      merges: plans.merges,
      before: b,
      after: a,
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
