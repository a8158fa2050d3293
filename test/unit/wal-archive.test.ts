import { describe, expect, it } from 'vitest';
import { LsnHistory } from '../../activities/postgres/wal/lag';
import { receiverArgs } from '../../activities/postgres/wal/receiver';
import {
  describeGap,
  findSegmentGaps,
  formatLsn,
  nextWalSegment,
  parseLsn,
  parseWalSegment,
  segmentEndLsn,
  segmentOfLsn,
  walSegmentKey,
  walSegmentName,
  walTimelinePrefix,
} from '../../common/pitr';

describe('WAL segment arithmetic (common/pitr.ts)', () => {
  it('the segment after the last of a log id is the first of the next one (16 MiB)', () => {
    expect(nextWalSegment('000000010000000A000000FF')).toBe('000000010000000B00000000');
    expect(nextWalSegment('000000010000000A00000000')).toBe('000000010000000A00000001');
    expect(nextWalSegment('0000000200000000000000FE')).toBe('0000000200000000000000FF');
  });

  it('other segment sizes: 1 MiB has 4096 segments per log id, 64 MiB has 64', () => {
    expect(nextWalSegment('000000010000000A00000FFF', 1 << 20)).toBe('000000010000000B00000000');
    expect(nextWalSegment('000000010000000A0000003F', 64 << 20)).toBe('000000010000000B00000000');
    expect(() => parseWalSegment('000000010000000A00000040', 64 << 20)).toThrow(/beyond 63/);
    expect(() => parseWalSegment('000000010000000A00000000', 3 << 20)).toThrow(/power of two/);
  });

  it('names and numbers round-trip, and LSNs map to the segment pg_walfile_name gives', () => {
    const { timeline, segno } = parseWalSegment('000000010000000C000000DC');
    expect(timeline).toBe(1);
    expect(segno).toBe(0xc * 256 + 0xdc);
    expect(walSegmentName(timeline, segno)).toBe('000000010000000C000000DC');
    // SELECT pg_walfile_name('C/DC619618') on the dev stack: 000000010000000C000000DC
    expect(segmentOfLsn(parseLsn('C/DC619618'), 1)).toBe('000000010000000C000000DC');
    expect(formatLsn(segmentEndLsn('000000010000000C000000DC'))).toBe('C/DD000000');
    expect(formatLsn(parseLsn('16/B374D848'))).toBe('16/B374D848');
    expect(() => parseLsn('16-B374D848')).toThrow(/not an LSN/);
  });

  it('finds gaps in one timeline, naming the missing segments', () => {
    const gaps = findSegmentGaps([
      '000000010000000A000000FD',
      '000000010000000B00000001',
      '000000010000000A000000FE',
      '000000010000000B00000003',
    ]);
    expect(gaps.map(describeGap)).toEqual([
      '2 segments 000000010000000A000000FF..000000010000000B00000000',
      'segment 000000010000000B00000002',
    ]);
    expect(gaps[0]).toMatchObject({ after: '000000010000000A000000FE', before: '000000010000000B00000001' });
    expect(findSegmentGaps(['000000010000000A000000FF', '000000010000000B00000000'])).toEqual([]);
    expect(() => findSegmentGaps(['000000010000000A000000FF', '000000020000000B00000000'])).toThrow(
      /one timeline/,
    );
  });

  it('keys: one folder per timeline, the segment name inside', () => {
    expect(walSegmentKey('7715406755856891660', '000000020000000C000000DC')).toBe(
      'pitr/7715406755856891660/wal/00000002/000000020000000C000000DC.zst',
    );
    expect(walTimelinePrefix('7715406755856891660', '00000002')).toBe(
      'pitr/7715406755856891660/wal/00000002/',
    );
    expect(() => walTimelinePrefix('7715406755856891660', '2')).toThrow(/timeline/);
  });
});

describe('archive lag in seconds from sampled server positions', () => {
  it('is the age of the first sample past the position, 0 when caught up', () => {
    const h = new LsnHistory();
    h.add(1_000, 100);
    h.add(2_000, 100);
    h.add(3_000, 250);
    h.add(4_000, 400);
    expect(h.lagSeconds(400, 5_000)).toBe(0);
    expect(h.lagSeconds(300, 5_000)).toBe(1);
    expect(h.lagSeconds(100, 5_000)).toBe(2);
    // Older than every sample: at least as old as the first one.
    expect(h.lagSeconds(50, 5_000)).toBe(4);
  });

  it('keeps one sample older than its window', () => {
    const h = new LsnHistory(1_000);
    for (let t = 0; t <= 10_000; t += 500) h.add(t, t);
    expect(h.lagSeconds(-1, 10_000)).toBeLessThanOrEqual(1.5);
  });
});

describe('pg_receivewal flags', () => {
  it('streams from the slot, flushes synchronously, never loops or prompts', () => {
    expect(receiverArgs('/spool', 's_recv')).toEqual([
      '--directory',
      '/spool',
      '--slot',
      's_recv',
      '--synchronous',
      '--no-loop',
      '--no-password',
      '--verbose',
    ]);
  });
});
