import { DAYS_OF_WEEK, type ScheduleOptions, ScheduleOverlapPolicy } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import type { BaseBackupKind, BaseBackupWorkflowInput } from '../../common/basebackup';
import { baseBackupScheduleId } from '../../common/ids';
import { DBOPS_OPERATION } from '../../common/search-attributes';
import type { ScheduledStart } from '../client/start';
import type { Config } from '../config';
import { WEEKDAYS } from '../config/variables';

/**
 * The base backups of the configured server (issue 20), when DBOPS_BASEBACKUP_SCHEDULE=on: a full
 * one every DBOPS_BASEBACKUP_FULL_DAY and an incremental one (PostgreSQL 17+, builds on the newest
 * base backup) on the six other days, at DBOPS_BASEBACKUP_TIME in DBOPS_SCHEDULE_TIMEZONE. Two
 * schedules on disjoint days, so a full and an incremental one never start together; Temporal
 * appends the scheduled time to the workflow ID (`basebackup-<kind>-<time>`, the shape of a manual
 * one). Overlap SKIP: a base backup still running when the next is due is not doubled. A full one
 * missed while Temporal was down is caught up within a day (the week's chain starts from it); a
 * missed incremental one within 6 hours (the next day's takes its changes anyway).
 */
export function baseBackupSchedules(config: Config): ScheduleOptions[] {
  if (!config.basebackup.schedule) return [];
  const [hour, minute] = config.basebackup.time.split(':').map(Number) as [number, number];
  const fullDay = WEEKDAYS.indexOf(config.basebackup.fullDay);
  const days = {
    full: [DAYS_OF_WEEK[fullDay]!],
    incremental: DAYS_OF_WEEK.filter((_, i) => i !== fullDay),
  };
  const schedule = (kind: BaseBackupKind, catchupWindow: Duration, description: string): ScheduleOptions => {
    const input: BaseBackupWorkflowInput = { kind, trigger: 'scheduled' };
    return {
      scheduleId: baseBackupScheduleId(kind),
      spec: {
        calendars: [{ dayOfWeek: days[kind], hour, minute, comment: description }],
        timezone: config.backup.timezone,
      },
      action: {
        type: 'startWorkflow',
        workflowType: 'baseBackupWorkflow',
        taskQueue: config.temporal.taskQueue,
        workflowId: baseBackupScheduleId(kind),
        args: [input],
        staticSummary: `${kind} base backup, scheduled`,
        typedSearchAttributes: [{ key: DBOPS_OPERATION, value: 'basebackup' }],
      } satisfies ScheduledStart<'baseBackupWorkflow'>,
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow },
      memo: { description },
    };
  };
  const fullName = DAYS_OF_WEEK[fullDay]!.toLowerCase();
  return [
    schedule('full', '1 day', `weekly full base backup (${fullName})`),
    schedule('incremental', '6 hours', `daily incremental base backup (except ${fullName})`),
  ];
}
