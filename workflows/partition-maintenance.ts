import { log, workflowInfo } from '@temporalio/workflow';
import type { NotifyActivities } from '../activities/notify';
import type { LifecycleActivities } from '../activities/postgres/lifecycle';
import type { DrainResult, RetentionResult } from '../activities/postgres/partitions';
import type { StorageActivities } from '../activities/storage';
import { workflowRunUrl } from '../common/links';
import { type RetentionMode, monthOf, verifiedBackupTimes } from '../common/lifecycle';
import { activitiesWith } from './activity-profiles';

export interface PartitionMaintenanceInput {
  readonly database: string;
  /** Months after the current one that must have a partition (DBOPS_PARTITION_PREMAKE_MONTHS). */
  readonly premakeMonths: number;
  readonly retentionMonths: number;
  readonly retentionMode: RetentionMode;
  /** Rows per INSERT batch when draining DEFAULT (default 10000). */
  readonly batchRows?: number;
  /** Temporal Web UI base URL, for the link in the notification. */
  readonly uiUrl?: string;
}

export interface PartitionMaintenanceResult {
  readonly database: string;
  readonly drained: DrainResult;
  readonly created: readonly string[];
  readonly retention: RetentionResult;
  readonly verifiedBackups: number;
  readonly notified: boolean;
  readonly summary: string;
}

/**
 * Daily upkeep of user_behaviors for one database: move any rows that fell into the DEFAULT
 * partition into their own monthly partitions (before premaking, so ensure_behavior_partitions
 * never has to move rows unbatched), premake the coming months, notify when rows were moved,
 * then drop/detach the partitions past retention that a verified backup covers.
 */
export async function partitionMaintenanceWorkflow(
  input: PartitionMaintenanceInput,
): Promise<PartitionMaintenanceResult> {
  const short = activitiesWith<LifecycleActivities>('short');
  const streaming = activitiesWith<LifecycleActivities>('streaming');
  const storage = activitiesWith<StorageActivities>('short');
  const notify = activitiesWith<NotifyActivities>('notify');
  const { database } = input;
  const now = new Date();

  const drained = await streaming.drainDefaultPartition({ database, batchRows: input.batchRows });
  const created = await short.premakeBehaviorPartitions({
    database,
    fromMonth: monthOf(now),
    monthsAhead: input.premakeMonths,
  });

  let notified = false;
  if (drained.rows > 0) {
    const info = workflowInfo();
    const moved = drained.moved.map((m) => `${m.partition}: ${m.rows}`).join(', ');
    const res = await notify.notifySlack({
      text: `:card_index_dividers: partition maintenance of ${database} moved ${drained.rows} row(s) out of user_behaviors_default`,
      fields: [
        { title: 'Moved', value: moved },
        { title: 'Partitions created', value: created.join(', ') || 'none' },
      ],
      link: input.uiUrl
        ? {
            label: 'Open the run in the Temporal Web UI',
            url: workflowRunUrl(input.uiUrl, info.namespace, info.workflowId, info.runId),
          }
        : undefined,
    });
    notified = res.sent;
  }

  const verified = verifiedBackupTimes(await storage.listBackups({ database }));
  const retention = await short.applyPartitionRetention({
    database,
    now: now.toISOString(),
    retentionMonths: input.retentionMonths,
    mode: input.retentionMode,
    verifiedBackups: verified,
    dryRun: false,
  });

  const removed = retention.decisions.filter((d) => d.done).map((d) => d.partition);
  const refused = retention.decisions.filter((d) => d.action === 'refuse');
  const summary =
    `partition maintenance of ${database}: moved ${drained.rows} row(s) from DEFAULT into ${drained.moved.length} partition(s); ` +
    `created ${created.length} partition(s); ${input.retentionMode === 'drop' ? 'dropped' : 'detached'} ${removed.length}` +
    (refused.length ? `; refused ${refused.length} (${refused[0]!.reason})` : '');
  log.info(summary);
  return {
    database,
    drained,
    created,
    retention,
    verifiedBackups: verified.length,
    notified,
    summary,
  };
}
