import { describe, expect, it } from 'vitest';
import {
  type BackupEntry,
  dumpFileName,
  type BackupHold,
  isGoodBackup,
  makeBackupId,
  parseBackupId,
  planPrune,
} from '../../common/backup';
import { backupScheduleId, backupWorkflowId, dumpTaskQueue } from '../../common/ids';
import { backupMessage, slackPayload } from '../../activities/notify';

const DAY = 86_400_000;
const now = new Date('2026-11-26T12:00:00Z');
const entry = (daysAgo: number, complete: boolean, verification?: 'passed' | 'failed'): BackupEntry => {
  const time = new Date(now.getTime() - daysAgo * DAY);
  return {
    id: makeBackupId('recsys', time),
    database: 'recsys',
    time: new Date(Math.floor(time.getTime() / 1000) * 1000).toISOString(),
    complete,
    verification: verification ? { status: verification, checkedAt: time.toISOString() } : undefined,
    storedBytes: 1,
  };
};

describe('backup ids', () => {
  it('formats <db>_<UTC yyyymmdd_hhmmss> and parses it back', () => {
    const id = makeBackupId('rec_sys', new Date('2026-01-02T03:04:05.678Z'));
    expect(id).toBe('rec_sys_20260102_030405');
    expect(parseBackupId(id)).toEqual({ id, database: 'rec_sys', time: new Date('2026-01-02T03:04:05Z') });
  });
  it.each([
    '../recsys_20260102_030405',
    'recsys/x_20260102_030405',
    'recsys_20261302_030405',
    'recsys_20260102_030405/..',
    '',
    'recsys',
  ])('rejects %j with the expected shape in the message', (bad) =>
    expect(() => parseBackupId(bad)).toThrow(/not valid: expected <database>_<yyyymmdd>_<hhmmss>/),
  );
  it('names files and workflow/schedule ids deterministically', () => {
    expect(dumpFileName('custom', 'zstd')).toBe('dump.pgcustom.zst');
    expect(dumpFileName('plain', 'gzip')).toBe('dump.sql.gz');
    expect(backupWorkflowId('recsys', new Date('2026-11-26T03:00:41Z'))).toBe(
      'backup-recsys-2026-11-26T03:00:00Z',
    );
    expect(backupScheduleId('recsys')).toBe('backup-recsys');
    expect(dumpTaskQueue('dbops')).toBe('dbops-dumps');
  });
});

describe('retention', () => {
  it('after 40 days of failures keeps the newest good backups, deletes older ones and old leftovers', () => {
    const entries = [
      ...[45, 44, 43, 42, 41].map((d) => entry(d, true)),
      ...Array.from({ length: 40 }, (_, i) => entry(i + 0.5, false)),
    ];
    const plan = planPrune(entries, { retentionDays: 30, minKeep: 3 }, now);
    const kept = plan.filter((p) => p.action === 'keep').map((p) => p.entry.id);
    const deleted = plan.filter((p) => p.action === 'delete').map((p) => p.entry.id);
    expect(kept).toEqual(expect.arrayContaining([41, 42, 43].map((d) => entry(d, true).id)));
    expect(deleted).toEqual(expect.arrayContaining([44, 45].map((d) => entry(d, true).id)));
    // failed leftovers older than 30 days go, younger ones (maybe running) stay
    expect(deleted).toContain(entry(35.5, false).id);
    expect(kept).toContain(entry(10.5, false).id);
  });
  it('never deletes the newest good backup, even with minKeep 1 and retention 1 day', () => {
    const plan = planPrune([entry(100, true), entry(200, true)], { retentionDays: 1, minKeep: 1 }, now);
    expect(plan.find((p) => p.action === 'keep')?.entry.id).toBe(entry(100, true).id);
  });
  it('a backup whose test restore failed is not good', () => {
    expect(isGoodBackup(entry(1, true, 'failed'))).toBe(false);
    expect(isGoodBackup(entry(1, true, 'passed'))).toBe(true);
    expect(isGoodBackup(entry(1, false))).toBe(false);
    const plan = planPrune(
      [entry(50, true), entry(40, true, 'failed')],
      { retentionDays: 30, minKeep: 1 },
      now,
    );
    expect(plan.map((p) => p.action)).toEqual(['delete', 'keep']);
  });
  it('keeps a backup a restore holds, says who holds it, and deletes it once the hold ended or expired', () => {
    const entries = [entry(50, true, 'passed'), entry(45, true, 'passed'), entry(2, true, 'passed')];
    const hold = (expiresInMs: number): BackupHold => ({
      backupId: entry(50, true).id,
      holder: 'restore-recsys-1',
      reason: 'restore into recsys',
      heldAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + expiresInMs).toISOString(),
    });
    const policy = { retentionDays: 30, minKeep: 1 };
    const held = planPrune(entries, policy, now, [hold(DAY)]);
    expect(held.map((p) => [p.action, p.held ?? false])).toEqual([
      ['keep', false],
      ['delete', false],
      ['keep', true],
    ]);
    expect(held[2]!.reason).toMatch(
      /50 days old \(verified\), older than 30 days, but held by restore-recsys-1/,
    );
    // The hold is not a good backup: min-keep still protects the newest good one only.
    expect(held[0]!.reason).toMatch(/newest 1 good/);
    for (const gone of [[], [hold(-1)]])
      expect(planPrune(entries, policy, now, gone).map((p) => p.action)).toEqual([
        'keep',
        'delete',
        'delete',
      ]);
  });
});

describe('Slack message', () => {
  it('is built as JSON: quotes and newlines in values survive', () => {
    const msg = backupMessage({
      outcome: 'failed',
      database: 'recsys',
      backupId: 'recsys_20260102_030405',
      trigger: 'scheduled',
      durationMs: 1234,
      error: 'pg_dump: error: "quoted" \n and \\ backslash',
      runUrl: 'http://ui/x',
    });
    const round = JSON.parse(JSON.stringify(slackPayload(msg))) as {
      text: string;
      blocks: { fields?: { text: string }[] }[];
    };
    expect(round.text).toContain('scheduled backup of recsys failed');
    expect(round.blocks[1]!.fields!.map((f) => f.text)).toContain(
      '*Error*\npg_dump: error: "quoted" \n and \\ backslash',
    );
  });
});
