import { type ScheduleOptions, ScheduleOverlapPolicy } from '@temporalio/client';
import { backupScheduleId } from '../../common/ids';
import { backupSearchAttributes, backupSummary, backupWorkflowArgs } from '../client/backup';
import type { ScheduledStart } from '../client/start';
import type { Config } from '../config';

/**
 * The daily backup of every configured database at DBOPS_BACKUP_TIME in DBOPS_SCHEDULE_TIMEZONE,
 * with up to 10 minutes of jitter (databases do not all start on the same second). Temporal
 * appends the scheduled time to the workflow ID (`backup-<db>-<time>`), overlap SKIP means a
 * backup still running is never doubled, and a run missed while the server was down is caught up
 * within a day.
 */
export function backupSchedules(config: Config): ScheduleOptions[] {
  const [hour, minute] = config.backup.scheduleTime.split(':').map(Number) as [number, number];
  return config.databases.map((database) => ({
    scheduleId: backupScheduleId(database),
    spec: {
      calendars: [{ hour, minute, comment: `daily backup of ${database}` }],
      timezone: config.backup.timezone,
      jitter: '10 minutes',
    },
    action: {
      type: 'startWorkflow',
      workflowType: 'backupWorkflow',
      taskQueue: config.temporal.taskQueue,
      workflowId: backupScheduleId(database),
      args: [backupWorkflowArgs(config, database, 'scheduled')],
      staticSummary: backupSummary(database, 'scheduled'),
      typedSearchAttributes: backupSearchAttributes(database),
    } satisfies ScheduledStart<'backupWorkflow'>,
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 day' },
    memo: { description: `daily backup of ${database}` },
  }));
}
