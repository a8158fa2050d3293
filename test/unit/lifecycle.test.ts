import { describe, expect, it } from 'vitest';
import type { BackupEntry } from '../../common/backup';
import {
  addMonths,
  keepUntilFromComment,
  monthOf,
  monthStart,
  monthsBetween,
  parseLeftoverDatabase,
  partitionMonth,
  partitionName,
  partitionRange,
  planLeftoverDatabases,
  planPartitionRetention,
  retentionCutoffMonth,
  verifiedBackupTimes,
} from '../../common/lifecycle';
import { partitionMaintenanceScheduleId, partitionMaintenanceWorkflowId } from '../../common/ids';

describe('month math', () => {
  it('adds months across years, both ways', () => {
    expect(addMonths('2026-11', 3)).toBe('2027-02');
    expect(addMonths('2026-01', -1)).toBe('2025-12');
    expect(addMonths('2026-11', -13)).toBe('2025-10');
    expect(addMonths('2000-12', 1)).toBe('2001-01');
    expect(() => addMonths('2026-13', 1)).toThrow(/not a month/);
  });

  it('takes the UTC month of an instant', () => {
    expect(monthOf(new Date('2026-11-30T23:59:59.999Z'))).toBe('2026-11');
    expect(monthOf(new Date('2026-12-01T00:00:00Z'))).toBe('2026-12');
    expect(monthStart('2027-02').toISOString()).toBe('2027-02-01T00:00:00.000Z');
  });

  it('maps partition names to months and UTC ranges, and back', () => {
    expect(partitionName('2026-03')).toBe('user_behaviors_2026_03');
    expect(partitionMonth('user_behaviors_2026_03')).toBe('2026-03');
    expect(partitionMonth('user_behaviors_default')).toBeUndefined();
    expect(partitionMonth('user_behaviors_2026_13')).toBeUndefined();
    expect(partitionMonth('user_behaviors_2026_03_detached')).toBeUndefined();
    expect(partitionRange('2026-12')).toEqual({
      from: '2026-12-01 00:00:00+00',
      to: '2027-01-01 00:00:00+00',
    });
    expect(monthsBetween('2026-11', '2027-02')).toEqual(['2026-11', '2026-12', '2027-01', '2027-02']);
  });

  it('keeps 13 full months plus the current one by default', () => {
    expect(retentionCutoffMonth(new Date('2026-11-26T03:00:00Z'), 13)).toBe('2025-10');
  });
});

const entry = (time: string, status?: 'passed' | 'failed', complete = true): BackupEntry => ({
  id: `recsys_${time.replace(/[-:TZ]/g, '').slice(0, 8)}_${time.replace(/[-:TZ]/g, '').slice(8, 14)}`,
  database: 'recsys',
  time,
  complete,
  verification: status ? { status, checkedAt: time } : undefined,
  storedBytes: 1,
});

describe('partition retention', () => {
  const now = new Date('2026-11-26T03:00:00Z');
  const partitions = [
    'user_behaviors_2025_08',
    'user_behaviors_2025_09',
    'user_behaviors_2025_10',
    'user_behaviors_2026_11',
    'user_behaviors_default',
  ];

  it('counts only complete backups that passed a test restore', () => {
    expect(
      verifiedBackupTimes([
        entry('2026-11-01T03:00:00.000Z', 'passed'),
        entry('2026-11-02T03:00:00.000Z', 'failed'),
        entry('2026-11-03T03:00:00.000Z'),
        entry('2026-11-04T03:00:00.000Z', 'passed', false),
      ]),
    ).toEqual(['2026-11-01T03:00:00.000Z']);
  });

  it('drops past-retention partitions whose end a verified backup covers, refuses the rest', () => {
    const plan = planPartitionRetention({
      partitions,
      now,
      retentionMonths: 13,
      mode: 'drop',
      verifiedBackups: ['2025-09-15T03:00:00.000Z'],
    });
    expect(plan.map((d) => [d.partition, d.action])).toEqual([
      ['user_behaviors_2025_08', 'drop'],
      ['user_behaviors_2025_09', 'refuse'],
    ]);
    expect(plan[1]!.reason).toMatch(/older than the partition's end 2025-10-01/);
  });

  it('refuses everything without a verified backup, and detaches in detach mode', () => {
    const none = planPartitionRetention({
      partitions,
      now,
      retentionMonths: 13,
      mode: 'drop',
      verifiedBackups: [],
    });
    expect(none.every((d) => d.action === 'refuse')).toBe(true);
    expect(none[0]!.reason).toMatch(/no verified backup/);
    const detach = planPartitionRetention({
      partitions,
      now,
      retentionMonths: 13,
      mode: 'detach',
      verifiedBackups: ['2026-11-01T00:00:00.000Z'],
    });
    expect(detach.map((d) => d.action)).toEqual(['detach', 'detach']);
  });

  it('a backup taken exactly at the partition end covers it', () => {
    const plan = planPartitionRetention({
      partitions: ['user_behaviors_2025_09'],
      now,
      retentionMonths: 13,
      mode: 'drop',
      verifiedBackups: ['2025-10-01T00:00:00.000Z'],
    });
    expect(plan[0]!.action).toBe('drop');
  });
});

describe('leftover restore databases', () => {
  const now = new Date('2026-11-26T12:00:00Z');

  it('parses the restore workflow names', () => {
    expect(parseLeftoverDatabase('recsys__restore_20261126030000')).toMatchObject({
      kind: 'shadow',
      target: 'recsys',
    });
    expect(parseLeftoverDatabase('recsys__pre_restore_20261126030000')?.kind).toBe('pre_restore');
    expect(parseLeftoverDatabase('recsys__verify_20261126030000')?.createdAt.toISOString()).toBe(
      '2026-11-26T03:00:00.000Z',
    );
    expect(parseLeftoverDatabase('recsys')).toBeUndefined();
    expect(parseLeftoverDatabase('recsys__verify_20261332030000')).toBeUndefined();
  });

  it('reads keepUntil from the pre-restore comment', () => {
    const c = JSON.stringify({
      dbops: 'pre_restore',
      target: 'recsys',
      workflowId: 'w',
      keepUntil: '2026-12-01T00:00:00Z',
    });
    expect(keepUntilFromComment(c)?.toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(keepUntilFromComment('not json')).toBeUndefined();
    expect(keepUntilFromComment(null)).toBeUndefined();
  });

  it('drops only what carries the mark, is past its keep time and has no sessions', () => {
    const kept = JSON.stringify({
      dbops: 'pre_restore',
      target: 'recsys',
      workflowId: 'w',
      keepUntil: '2026-12-01T00:00:00Z',
    });
    const expired = JSON.stringify({
      dbops: 'pre_restore',
      target: 'recsys',
      workflowId: 'w',
      keepUntil: '2026-11-01T00:00:00Z',
    });
    const work = (dbops: 'restore' | 'verify', workflowId: string, createdAt: string) =>
      JSON.stringify({ dbops, workflowId, createdAt });
    const plan = planLeftoverDatabases({
      now,
      keepDays: 7,
      scratchMaxAgeMs: 86_400_000,
      workflowStatus: new Map([
        ['running', 'RUNNING'],
        ['ended', 'TERMINATED'],
      ]),
      databases: [
        { name: 'recsys__pre_restore_20261101000000', comment: kept, connections: 0 },
        { name: 'recsys__pre_restore_20261101000001', comment: expired, connections: 0 },
        // Look-alike names without dbops' mark: a user's databases, never dropped.
        { name: 'recsys__pre_restore_20200101000000', comment: null, connections: 0 },
        { name: 'recsys__restore_20200101000000', comment: 'my own', connections: 0 },
        { name: 'recsys__verify_20200101000000', comment: kept, connections: 0 },
        // Named after a start a day ago, created an hour ago: its mark's createdAt counts.
        {
          name: 'recsys__restore_20261125000000',
          comment: work('restore', 'w1', '2026-11-26T11:00:00Z'),
          connections: 0,
        },
        {
          name: 'recsys__verify_20261120000000',
          comment: work('verify', 'w2', '2026-11-20T00:00:00Z'),
          connections: 0,
        },
        {
          name: 'recsys__verify_20261120000001',
          comment: work('verify', 'running', '2026-11-20T00:00:00Z'),
          connections: 0,
        },
        {
          name: 'recsys__restore_20261126110000',
          comment: work('restore', 'ended', '2026-11-26T11:00:00Z'),
          connections: 0,
        },
        {
          name: 'recsys__restore_20261120000000',
          comment: work('restore', 'w3', '2026-11-20T00:00:00Z'),
          connections: 1,
        },
        { name: 'recsys', comment: null, connections: 5 },
      ],
    });
    expect(plan.map((d) => [d.database, d.action])).toEqual([
      ['recsys__pre_restore_20261101000000', 'keep'],
      ['recsys__pre_restore_20261101000001', 'drop'],
      ['recsys__pre_restore_20200101000000', 'keep'],
      ['recsys__restore_20200101000000', 'keep'],
      ['recsys__verify_20200101000000', 'keep'],
      ['recsys__restore_20261125000000', 'keep'],
      ['recsys__verify_20261120000000', 'drop'],
      ['recsys__verify_20261120000001', 'keep'],
      ['recsys__restore_20261126110000', 'drop'],
      ['recsys__restore_20261120000000', 'keep'],
    ]);
    expect(plan[2]!.reason).toMatch(/not made by dbops/);
    expect(plan[7]!.reason).toBe('workflow running is running');
    expect(plan[8]!.reason).toBe('workflow ended is over (terminated)');
  });
});

describe('ids', () => {
  it('one maintenance run per database and UTC day', () => {
    expect(partitionMaintenanceWorkflowId('recsys', new Date('2026-11-26T23:59:00Z'))).toBe(
      'partition-maintenance/recsys/2026-11-26',
    );
    expect(partitionMaintenanceScheduleId('recsys')).toBe('partition-maintenance-recsys');
  });
});
