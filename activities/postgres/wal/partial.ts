import { createHash } from 'node:crypto';
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  formatLsn,
  isWalSegmentName,
  parseWalSegment,
  segmentTimeline,
  walPartialKey,
  walPartialSidecarKey,
  type WalPartialSidecar,
} from '../../../common/pitr';
import type { BackupStore } from '../../storage';
import { compress, gateOnSuccess, HashTap } from '../dump-pipeline';

/**
 * The recovery point between two completed segments (issue 20: seconds, not the 11–22 s a 16 MiB
 * segment takes to fill under a steady load, and not the whole segment after a crash): the
 * `<segment>.partial` pg_receivewal is writing is uploaded whenever it changed and MIN_INTERVAL_MS
 * passed since the last upload, replacing the previous upload (the store's put is atomic per key),
 * its sidecar written after it. A recovery replays it when no later segment exists (pitr/wal-feed.ts).
 */

/** At most one upload a second: with the 500 ms poll the store trails pg_receivewal by ≤ ~1.5 s. */
export const PARTIAL_MIN_INTERVAL_MS = 1_000;

/** The newest `.partial` in the spool (the one being written), or undefined. */
async function currentPartial(spool: string, segmentBytes: number): Promise<string | undefined> {
  const partials = (await readdir(spool))
    .filter((n) => n.endsWith('.partial'))
    .map((n) => n.slice(0, -'.partial'.length))
    .filter(isWalSegmentName)
    .sort(
      (a, b) =>
        parseWalSegment(a, segmentBytes).segno - parseWalSegment(b, segmentBytes).segno || (a < b ? -1 : 1),
    );
  return partials.at(-1);
}

/** Offset after the last non-zero byte: pg_receivewal zero-fills a new segment, so this is where its data ends. */
function dataEnd(buf: Buffer, length: number): number {
  let end = length;
  // Word-wise over the zero tail (most of the segment early on), then byte-wise.
  while (end >= 8 && buf.readBigUInt64LE(end - 8) === 0n) end -= 8;
  while (end > 0 && buf[end - 1] === 0) end--;
  return end;
}

export class PartialUploader {
  private last: { segment: string; mtimeMs: number; size: number; at: number; sha256: string } | undefined;
  /** One buffer of a segment's size, reused: a fresh 16 MiB each second would grow the worker's RSS. */
  private buffer: Buffer | undefined;
  /** The newest upload's sidecar, for the lag (the stored position) and the heartbeat. */
  uploaded: WalPartialSidecar | undefined;

  constructor(
    private readonly store: BackupStore,
    private readonly systemId: string,
    private readonly spool: string,
    private readonly segmentBytes: number,
    private readonly minIntervalMs = PARTIAL_MIN_INTERVAL_MS,
  ) {}

  /**
   * Uploads the segment being received if it changed since the last upload and (unless `force`,
   * when pg_receivewal has ended: its last bytes count most) the interval passed. `flushedLsn`:
   * pg_receivewal's flush position sampled before the read (the file holds at least that much).
   */
  async upload(
    o: { force?: boolean; flushedLsn?: number | null } = {},
  ): Promise<WalPartialSidecar | undefined> {
    if (!o.force && this.last && Date.now() - this.last.at < this.minIntervalMs) return undefined;
    const segment = await currentPartial(this.spool, this.segmentBytes);
    if (!segment) return undefined;
    const file = path.join(this.spool, `${segment}.partial`);
    const info = await stat(file).catch(() => undefined);
    if (!info) return undefined; // completed (renamed) meanwhile: the spool drain stores it
    const last = this.last;
    if (last?.segment === segment && last.mtimeMs === info.mtimeMs && last.size === info.size)
      return undefined;
    const buf = (this.buffer ??= Buffer.alloc(this.segmentBytes));
    const handle = await open(file, 'r').catch(() => undefined);
    if (!handle) return undefined;
    let length = 0;
    try {
      while (length < buf.length) {
        const { bytesRead } = await handle.read(buf, length, buf.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
      }
    } finally {
      await handle.close();
    }
    const data = buf.subarray(0, length);
    const sha256 = createHash('sha256').update(data).digest('hex');
    if (last?.segment === segment && last.sha256 === sha256) {
      this.last = { ...last, mtimeMs: info.mtimeMs, size: info.size };
      return undefined;
    }
    const start = parseWalSegment(segment, this.segmentBytes).segno * this.segmentBytes;
    const flushed =
      o.flushedLsn != null && o.flushedLsn > start
        ? Math.min(o.flushedLsn, start + this.segmentBytes) - start
        : 0;
    const receivedBytes = Math.max(dataEnd(buf, length), flushed);
    const c = compress('zstd', Readable.from([data]));
    const stored = new HashTap();
    try {
      await this.store.put(
        walPartialKey(this.systemId, segment),
        c.stream.pipe(stored).pipe(gateOnSuccess(() => c.done)),
      );
    } catch (err) {
      c.kill();
      throw err;
    }
    const sidecar: WalPartialSidecar = {
      sidecarVersion: 1,
      systemId: this.systemId,
      segment,
      timeline: segmentTimeline(segment),
      segmentBytes: this.segmentBytes,
      size: length,
      sha256,
      compression: 'zstd',
      storedSize: stored.bytes,
      storedSha256: stored.digest(),
      receivedLsn: formatLsn(start + receivedBytes),
      receivedBytes,
      archivedAt: new Date().toISOString(),
    };
    // Written last: a reader that sees this sidecar finds the object it describes (or a newer one, see wal-feed).
    await this.store.replaceJson(walPartialSidecarKey(this.systemId, segment), sidecar);
    this.last = { segment, mtimeMs: info.mtimeMs, size: info.size, at: Date.now(), sha256 };
    this.uploaded = sidecar;
    return sidecar;
  }

  /** The completed segment is stored: its partial objects go, the sidecar first (no sidecar is ever left without its object). */
  async completed(segment: string): Promise<void> {
    await this.store.delete(walPartialSidecarKey(this.systemId, segment));
    await this.store.delete(walPartialKey(this.systemId, segment));
    if (this.uploaded?.segment === segment) this.uploaded = undefined;
    if (this.last?.segment === segment) this.last = undefined;
  }
}
