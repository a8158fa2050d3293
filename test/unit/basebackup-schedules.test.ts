import type { ScheduleOptionsStartWorkflowAction, Workflow } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { baseBackupScheduleId } from '../../common/ids';
import { describeConfig, loadConfig } from '../../src/config';
import { desiredSchedules } from '../../src/schedules';
import { baseBackupSchedules } from '../../src/schedules/basebackup';
import { AREA_MEMO_KEY } from '../../src/schedules/ownership';

const base = { DBOPS_STACK_HOME: '/nonexistent-stack-home' };
const configWith = (env: Record<string, string>) => loadConfig({ ...base, ...env }, () => {});

describe('base backup schedules', () => {
  it('are off by default: apply creates none (and prunes the ones an earlier config made)', () => {
    const config = configWith({});
    expect(config.basebackup).toEqual({ schedule: false, time: '01:30', fullDay: 'sun', keepFull: 2 });
    expect(baseBackupSchedules(config)).toEqual([]);
    expect(desiredSchedules(config, ['basebackup'])).toEqual([]);
  });

  it('on: a weekly full one on its day and an incremental one on the six others, same time and zone, overlap SKIP', () => {
    const config = configWith({
      DBOPS_BASEBACKUP_SCHEDULE: 'on',
      DBOPS_BASEBACKUP_TIME: '02:15',
      DBOPS_BASEBACKUP_FULL_DAY: 'Wednesday',
      DBOPS_SCHEDULE_TIMEZONE: 'Europe/Berlin',
      DBOPS_TASK_QUEUE: 'dbops-prod',
    });
    const [full, incremental, ...rest] = baseBackupSchedules(config);
    expect(rest).toEqual([]);
    expect(full!.scheduleId).toBe(baseBackupScheduleId('full'));
    expect(incremental!.scheduleId).toBe('basebackup-incremental');
    expect(full!.spec.calendars).toEqual([
      { dayOfWeek: ['WEDNESDAY'], hour: 2, minute: 15, comment: 'weekly full base backup (wednesday)' },
    ]);
    expect(incremental!.spec.calendars).toEqual([
      {
        dayOfWeek: ['SUNDAY', 'MONDAY', 'TUESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY'],
        hour: 2,
        minute: 15,
        comment: 'daily incremental base backup (except wednesday)',
      },
    ]);
    for (const [s, kind] of [
      [full!, 'full'],
      [incremental!, 'incremental'],
    ] as const) {
      expect(s.spec.timezone).toBe('Europe/Berlin');
      expect(s.policies?.overlap).toBe('SKIP');
      expect(s.policies?.catchupWindow).toBeDefined();
      const action = s.action as ScheduleOptionsStartWorkflowAction<Workflow>;
      expect(action).toMatchObject({
        type: 'startWorkflow',
        workflowType: 'baseBackupWorkflow',
        taskQueue: 'dbops-prod',
        workflowId: `basebackup-${kind}`,
        args: [{ kind, trigger: 'scheduled' }],
      });
    }
    // A missed full one is caught up within a day; an incremental one only within hours.
    expect(full!.policies?.catchupWindow).toBe('1 day');
    expect(incremental!.policies?.catchupWindow).toBe('6 hours');
    // Marked as dbops' own under their area, so `schedules apply --prune` removes them once turned off.
    expect(
      desiredSchedules(config, ['basebackup']).map((d) => [d.area, d.options.memo?.[AREA_MEMO_KEY]]),
    ).toEqual([
      ['basebackup', 'basebackup'],
      ['basebackup', 'basebackup'],
    ]);
  });

  it('the full day takes short and full names in any case; every day leaves six for the incrementals', () => {
    for (const [text, day] of [
      ['sun', 'SUNDAY'],
      ['MON', 'MONDAY'],
      [' saturday ', 'SATURDAY'],
    ] as const) {
      const config = configWith({ DBOPS_BASEBACKUP_SCHEDULE: 'on', DBOPS_BASEBACKUP_FULL_DAY: text });
      const [full, incremental] = baseBackupSchedules(config);
      const days = (s: typeof full) => s!.spec.calendars![0]!.dayOfWeek as string[];
      expect(days(full)).toEqual([day]);
      expect(days(incremental)).toHaveLength(6);
      expect(days(incremental)).not.toContain(day);
    }
  });

  it('bad values fail naming the variable and what it takes', () => {
    const refused = (env: Record<string, string>) => {
      try {
        configWith(env);
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error(`accepted ${JSON.stringify(env)}`);
    };
    expect(refused({ DBOPS_BASEBACKUP_SCHEDULE: 'yes' })).toContain(
      'DBOPS_BASEBACKUP_SCHEDULE="yes": must be on (weekly full and daily incremental base backups) or off',
    );
    expect(refused({ DBOPS_BASEBACKUP_TIME: '1:30' })).toContain(
      'DBOPS_BASEBACKUP_TIME="1:30": must be HH:MM (24 h)',
    );
    expect(refused({ DBOPS_BASEBACKUP_TIME: '24:00' })).toContain('DBOPS_BASEBACKUP_TIME');
    expect(refused({ DBOPS_BASEBACKUP_FULL_DAY: 'sundae' })).toContain(
      'DBOPS_BASEBACKUP_FULL_DAY="sundae": must be a day of the week: sun, mon, tue, wed, thu, fri, sat (or its full name)',
    );
    expect(refused({ DBOPS_BASEBACKUP_KEEP_FULL: '0' })).toContain(
      'DBOPS_BASEBACKUP_KEEP_FULL="0": must be a whole number from 1 to 1000',
    );
  });

  it('dbops config shows the settings', () => {
    const config = configWith({ DBOPS_BASEBACKUP_SCHEDULE: 'on', DBOPS_BASEBACKUP_KEEP_FULL: '3' });
    const rows = Object.fromEntries(describeConfig(config, {}).map((r) => [r.name, r]));
    expect(rows.DBOPS_BASEBACKUP_SCHEDULE).toMatchObject({ value: 'on', source: 'env' });
    expect(rows.DBOPS_BASEBACKUP_TIME).toMatchObject({ value: '01:30 UTC', source: 'default' });
    expect(rows.DBOPS_BASEBACKUP_FULL_DAY).toMatchObject({ value: 'sun', source: 'default' });
    expect(rows.DBOPS_BASEBACKUP_KEEP_FULL).toMatchObject({ value: '3', source: 'env' });
  });
});
