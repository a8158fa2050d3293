import { type ScheduleOptions, ScheduleOverlapPolicy } from '@temporalio/client';
import { partitionMaintenanceScheduleId } from '../../common/ids';
import { maintenanceInput } from '../client/partitions';
import type { ScheduledStart } from '../client/start';
import type { Config } from '../config';

/**
 * Daily partition maintenance of every configured database (DBOPS_PARTITION_MAINTENANCE_TIME in
 * DBOPS_SCHEDULE_TIMEZONE). Temporal appends the scheduled time to the workflow ID, so each
 * database gets one run per day: `partition-maintenance-<db>-<yyyy-mm-ddThh:mm:00Z>`.
 * A run that is still going when the next is due is not doubled (overlap SKIP).
 */
export function partitionMaintenanceSchedules(config: Config): ScheduleOptions[] {
  const [hour, minute] = config.partitions.maintenanceTime.split(':').map(Number) as [number, number];
  return config.databases.map((database) => ({
    scheduleId: partitionMaintenanceScheduleId(database),
    spec: { calendars: [{ hour, minute }], timezone: config.backup.timezone },
    action: {
      type: 'startWorkflow',
      workflowType: 'partitionMaintenanceWorkflow',
      taskQueue: config.temporal.taskQueue,
      workflowId: partitionMaintenanceScheduleId(database),
      args: [maintenanceInput(config, database)],
    } satisfies ScheduledStart<'partitionMaintenanceWorkflow'>,
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '6 hours' },
    memo: { description: `daily partition maintenance of ${database}` },
  }));
}
