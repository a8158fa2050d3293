import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WalFeed } from '../../activities/postgres/pitr/wal-feed';
import { PartialUploader } from '../../activities/postgres/wal/partial';
import { LocalStore } from '../../activities/storage/local';
import {
  archivedSegments,
  formatLsn,
  parseWalArchiveKey,
  walPartialKey,
  walPartialSidecarKey,
  walSegmentSidecarKey,
  type WalPartialSidecar,
} from '../../common/pitr';

const sys = '7715406755856891660';
const SEG = 1 << 20; // 1 MiB segments keep the files small
const seg = (n: number) => `00000001000000000000000${n}`;

describe('partial segment keys (common/pitr.ts)', () => {
  it('tells a partial and its sidecar from a completed segment: both sidecars end in .zst.json', () => {
    expect(walPartialKey(sys, seg(3))).toBe(`pitr/${sys}/wal/00000001/${seg(3)}.partial.zst`);
    expect(walPartialSidecarKey(sys, seg(3))).toBe(`pitr/${sys}/wal/00000001/${seg(3)}.partial.zst.json`);
    expect(parseWalArchiveKey(`${seg(3)}.partial.zst.json`)).toEqual({
      segment: seg(3),
      partial: true,
      sidecar: true,
    });
    expect(parseWalArchiveKey(`${seg(3)}.zst`)).toEqual({ segment: seg(3), partial: false, sidecar: false });
    expect(parseWalArchiveKey(`${seg(3)}.zst.json.tmp-abc`)).toBeUndefined();
    const names = [
      `${seg(1)}.zst`,
      `${seg(1)}.zst.json`,
      `${seg(2)}.partial.zst`,
      `${seg(2)}.partial.zst.json`,
    ];
    expect(archivedSegments(names)).toEqual([seg(1)]);
  });
});

describe('partial upload and its replay (PartialUploader, WalFeed)', () => {
  let dir: string;
  let store: LocalStore;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'wal-partial-'));
    await mkdir(path.join(dir, 'spool'));
    store = new LocalStore(path.join(dir, 'store'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A pg_receivewal-like `.partial`: `used` bytes of WAL, zeros to the segment's end. */
  async function spoolPartial(segment: string, used: number): Promise<Buffer> {
    const buf = Buffer.alloc(SEG);
    randomBytes(used).copy(buf);
    buf[used - 1] = 0xff; // a non-zero last byte: the data end is exact
    await writeFile(path.join(dir, 'spool', `${segment}.partial`), buf);
    return buf;
  }

  async function want(feed: WalFeed, name: string): Promise<Buffer | 'missing'> {
    await writeFile(path.join(feed.queue, `want.${name}`), '');
    for (let i = 0; i < 200; i++) {
      feed.check();
      const got = await readFile(path.join(feed.queue, name)).catch(() => undefined);
      if (got) return got;
      if (await readFile(path.join(feed.queue, `${name}.missing`)).catch(() => undefined)) return 'missing';
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`the feed answered nothing for ${name}`);
  }

  it('uploads what was received (data end as the received LSN), only when it changed, and the feed serves it at the end of the archive', async () => {
    const up = new PartialUploader(store, sys, path.join(dir, 'spool'), SEG, 0);
    const bytes = await spoolPartial(seg(2), 5000);
    const first = await up.upload();
    expect(first).toMatchObject({
      segment: seg(2),
      receivedBytes: 5000,
      receivedLsn: formatLsn(2 * SEG + 5000),
      size: SEG,
    });
    expect(await up.upload()).toBeUndefined(); // unchanged
    const feed = new WalFeed(store, sys, path.join(dir, 'feed'));
    await feed.prepare();
    feed.start();
    try {
      const served = await want(feed, seg(2));
      // Byte for byte (Buffer.equals: a deep toEqual over a MiB is slow).
      expect(served !== 'missing' && served.equals(bytes)).toBe(true);
      expect(feed.current.partial).toEqual({ segment: seg(2), receivedLsn: first!.receivedLsn });
      expect(await want(feed, seg(3))).toBe('missing');
      expect(feed.current.endOfArchive).toBe(seg(3));
    } finally {
      await feed.stop();
    }
    // The completed segment stored: its partial objects go.
    await up.completed(seg(2));
    expect(await store.head(walPartialKey(sys, seg(2)))).toBeUndefined();
    expect(await store.head(walPartialSidecarKey(sys, seg(2)))).toBeUndefined();
  });

  it('a partial is not served when a later segment exists (that is a gap), nor when it does not match its sidecar', async () => {
    const up = new PartialUploader(store, sys, path.join(dir, 'spool'), SEG, 0);
    await spoolPartial(seg(2), 3000);
    await up.upload();
    // A sidecar that records other bytes: the feed reads again, then refuses naming the object.
    const sidecar = (await store.getJson<WalPartialSidecar>(walPartialSidecarKey(sys, seg(2))))!;
    await store.replaceJson(walPartialSidecarKey(sys, seg(2)), { ...sidecar, sha256: '0'.repeat(64) });
    const feed = new WalFeed(store, sys, path.join(dir, 'feed'));
    await feed.prepare();
    feed.start();
    await writeFile(path.join(feed.queue, `want.${seg(2)}`), '');
    await expect(
      (async () => {
        for (;;) {
          feed.check();
          await new Promise((r) => setTimeout(r, 50));
        }
      })(),
    ).rejects.toThrow(new RegExp(`partial WAL segment .*${seg(2)}\\.partial\\.zst.*read 5 times`));
    await feed.stop();
    // With a later completed segment, the missing segment is a gap: the partial is not used.
    await store.replaceJson(walPartialSidecarKey(sys, seg(2)), sidecar);
    await store.replaceJson(walSegmentSidecarKey(sys, seg(4)), {});
    const later = new WalFeed(store, sys, path.join(dir, 'feed2'));
    await later.prepare();
    later.start();
    try {
      expect(await want(later, seg(2))).toBe('missing');
      expect(later.current.gap).toBe(seg(2));
      expect(later.current.partial).toBeUndefined();
    } finally {
      await later.stop();
    }
  });
});
