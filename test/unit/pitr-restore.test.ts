import { describe, expect, it } from 'vitest';
import { chooseBaseChain } from '../../activities/postgres/pitr/resolve';
import { recoverySettings } from '../../activities/postgres/pitr/recover';
import type { BaseBackupEntry, BaseBackupManifest } from '../../common/basebackup';
import { pointInTimeSelector } from '../../common/pitr';
import { recoveryTarget } from '../../src/client/pitr-restore';

function entry(
  id: string,
  stopLsn: string,
  stoppedAt: string,
  parentId?: string,
  verified = true,
): BaseBackupEntry {
  const kind = id.endsWith('-full') ? 'full' : 'incremental';
  const manifest = {
    id,
    kind,
    ...(parentId ? { parentId } : {}),
    stopLsn,
    stoppedAt,
    verification: { verdict: verified ? 'passed' : 'failed' },
  } as unknown as BaseBackupManifest;
  return { id, kind, time: stoppedAt, complete: true, manifest, storedBytes: 1 };
}

const backups = [
  entry('20261201T030000Z-full', '0/3000100', '2026-12-01T03:00:10Z'),
  entry('20261202T030000Z-incremental', '0/5000100', '2026-12-02T03:00:10Z', '20261201T030000Z-full'),
  entry('20261203T030000Z-incremental', '0/7000100', '2026-12-03T03:00:10Z', '20261202T030000Z-incremental'),
  entry(
    '20261204T030000Z-incremental',
    '0/9000100',
    '2026-12-04T03:00:10Z',
    '20261203T030000Z-incremental',
    false,
  ),
];
const ids = (chain: BaseBackupManifest[]) => chain.map((m) => m.id);

describe('which base backups a point-in-time recovery starts from', () => {
  it('the newest verified backup consistent before the time, with its whole chain back to the full one', () => {
    expect(ids(chooseBaseChain(backups, { kind: 'time', time: '2026-12-03T12:00:00Z' }))).toEqual([
      '20261201T030000Z-full',
      '20261202T030000Z-incremental',
      '20261203T030000Z-incremental',
    ]);
    expect(ids(chooseBaseChain(backups, { kind: 'time', time: '2026-12-01T23:00:00Z' }))).toEqual([
      '20261201T030000Z-full',
    ]);
  });

  it('an unverified backup is never a starting point; latest takes the newest verified one', () => {
    expect(ids(chooseBaseChain(backups, { kind: 'latest' })).at(-1)).toBe('20261203T030000Z-incremental');
  });

  it('by LSN: the backup must be consistent at or before it', () => {
    expect(ids(chooseBaseChain(backups, { kind: 'lsn', lsn: '0/5000100' })).at(-1)).toBe(
      '20261202T030000Z-incremental',
    );
    expect(ids(chooseBaseChain(backups, { kind: 'lsn', lsn: '0/50000FF' })).at(-1)).toBe(
      '20261201T030000Z-full',
    );
  });

  it('a time before the oldest backup is refused naming when that backup became consistent', () => {
    expect(() => chooseBaseChain(backups, { kind: 'time', time: '2026-11-30T00:00:00Z' })).toThrow(
      /oldest verified base backup, 20261201T030000Z-full, became consistent at 2026-12-01T03:00:10Z.*choose a later target/,
    );
    expect(() => chooseBaseChain([], { kind: 'latest' })).toThrow(/dbops basebackup --wait/);
  });

  it('a chain whose parent is gone is refused, never combined without it', () => {
    expect(() => chooseBaseChain(backups.slice(1, 3), { kind: 'latest' })).toThrow(
      /builds on 20261201T030000Z-full, which is not in the store as a verified backup: the chain is broken/,
    );
  });
});

describe('recovery settings and the command line', () => {
  it('a time or LSN target pauses there, inclusive; latest runs to the archive end', () => {
    expect(recoverySettings({ kind: 'time', time: '2026-12-05T01:02:03.000Z' }, "'/x/r.sh' %f %p")).toEqual({
      restore_command: "'/x/r.sh' %f %p",
      recovery_target_timeline: 'latest',
      recovery_target_time: '2026-12-05 01:02:03.000+00',
      recovery_target_inclusive: 'on',
      recovery_target_action: 'pause',
    });
    expect(recoverySettings({ kind: 'latest' }, 'cmd')).toEqual({
      restore_command: 'cmd',
      recovery_target_timeline: 'latest',
    });
    expect(recoverySettings({ kind: 'lsn', lsn: '0/3000028' }, 'cmd').recovery_target_lsn).toBe('0/3000028');
  });

  it('--to-time needs RFC 3339 with a zone; exactly one of the three options', () => {
    expect(recoveryTarget({ toTime: '2026-12-05T10:30:00+01:00' })).toEqual({
      kind: 'time',
      time: '2026-12-05T09:30:00.000Z',
    });
    expect(() => recoveryTarget({ toTime: '2026-12-05 10:30:00' })).toThrow(
      /not an RFC 3339 time with a zone/,
    );
    expect(() => recoveryTarget({ toTime: 'yesterday' })).toThrow(/e\.g\. 2026-12-05T09:30:00Z/);
    expect(recoveryTarget({ toLsn: '16/b374d848' })).toEqual({ kind: 'lsn', lsn: '16/B374D848' });
    expect(() => recoveryTarget({ toLsn: '16-B3' })).toThrow(/not a WAL location like 16\/B374D848/);
    expect(() => recoveryTarget({ toLatest: true, toLsn: '0/1' })).toThrow(
      /one of --to-time, --to-lsn and --to-latest/,
    );
    expect(recoveryTarget({})).toBeUndefined();
    expect(pointInTimeSelector({ kind: 'latest' })).toBe('point-in-time:latest');
  });
});
