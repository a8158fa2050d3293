import { type ScheduleOptions, ScheduleOverlapPolicy } from '@temporalio/client';
import { DEFAULT_COLLECTION_NAMES } from '../../activities/milvus/collections';
import { milvusMaintenanceScheduleId } from '../../common/ids';
import type { MilvusMaintenanceInput } from '../../workflows/milvus-maintenance';
import type { ScheduledStart } from '../client/start';
import type { Config } from '../config';

/** After the nightly backups (DBOPS_BACKUP_TIME defaults to 03:00), in DBOPS_SCHEDULE_TIMEZONE. */
export const MILVUS_MAINTENANCE_TIME = { hour: 4, minute: 30 } as const;

/**
 * Nightly Milvus maintenance (flush → compact → wait → stats) of each managed collection.
 * The index is not rebuilt automatically (a rebuild releases the collection); drift is reported
 * in the summary and applied with `dbops milvus advise --rebuild` or `maintain --rebuild-index`.
 * Overlap SKIP: a run still going when the next is due is not doubled.
 */
export function milvusMaintenanceSchedules(config: Config): ScheduleOptions[] {
  return Object.values(DEFAULT_COLLECTION_NAMES).map((collection) => {
    const input: MilvusMaintenanceInput = { collection, rebuildIndexOnDrift: false };
    return {
      scheduleId: milvusMaintenanceScheduleId(collection),
      spec: { calendars: [{ ...MILVUS_MAINTENANCE_TIME }], timezone: config.backup.timezone },
      action: {
        type: 'startWorkflow',
        workflowType: 'milvusMaintenanceWorkflow',
        taskQueue: config.temporal.taskQueue,
        workflowId: milvusMaintenanceScheduleId(collection),
        args: [input],
      } satisfies ScheduledStart<'milvusMaintenanceWorkflow'>,
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '6 hours' },
      memo: { description: `nightly Milvus maintenance of ${collection}` },
    };
  });
}
