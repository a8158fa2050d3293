import { createReadStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FailureType, failure } from '../../../common/failures';
import {
  isTimelineHistoryName,
  isWalSegmentName,
  parseWalSegment,
  segmentTimeline,
  timelineHistoryKey,
  walSegmentKey,
  walSegmentSidecarKey,
  type WalSegmentSidecar,
} from '../../../common/pitr';
import type { BackupStore } from '../../storage';
import { compress, FileDigest, gateOnSuccess, HashTap } from '../dump-pipeline';

/**
 * pg_receivewal's spool folder: it writes `<segment>.partial` and renames it to `<segment>` once the
 * segment is complete and flushed, so a bare segment name is complete; timeline history files
 * (`<timeline>.history`) appear at a timeline switch.
 */
export interface SpoolContents {
  /** Completed segments, oldest first (by position, then timeline). */
  readonly segments: string[];
  readonly histories: string[];
  /** Every WAL file, partial ones included (`.partial` stripped): empty means a fresh spool. */
  readonly walFiles: string[];
}

export async function readSpool(dir: string, segmentBytes: number): Promise<SpoolContents> {
  const names = await readdir(dir);
  const segments = names.filter(isWalSegmentName);
  const bySegno = (a: string, b: string) =>
    parseWalSegment(a, segmentBytes).segno - parseWalSegment(b, segmentBytes).segno || (a < b ? -1 : 1);
  return {
    segments: segments.sort(bySegno),
    histories: names.filter(isTimelineHistoryName).sort(),
    walFiles: names
      .map((n) => n.replace(/\.partial$/, ''))
      .filter(isWalSegmentName)
      .sort(bySegno),
  };
}

/**
 * Stores one completed segment: its SHA-256 (read first, so a segment archived before is
 * recognised), zstd, the object, then its sidecar (the commit). The caller removes the spool file
 * only after this resolves. Archived WAL is never overwritten with other bytes: a sidecar already
 * there with another SHA-256 fails as IntegrityCheckFailed; with the same one it is kept as it is.
 */
export async function storeSegment(o: {
  readonly store: BackupStore;
  readonly systemId: string;
  readonly spool: string;
  readonly segment: string;
  readonly segmentBytes: number;
}): Promise<WalSegmentSidecar & { readonly reused: boolean }> {
  const file = path.join(o.spool, o.segment);
  const sidecarKey = walSegmentSidecarKey(o.systemId, o.segment);
  const raw = await new FileDigest().read(file);
  if (raw.bytes !== o.segmentBytes)
    throw failure(
      FailureType.IntegrityCheckFailed,
      `spool segment ${file} has ${raw.bytes} bytes, a completed segment has ${o.segmentBytes}`,
    );
  const existing = await o.store.getJson<WalSegmentSidecar>(sidecarKey);
  if (existing && existing.sha256 !== raw.digest())
    throw failure(
      FailureType.IntegrityCheckFailed,
      `${o.store.describe(sidecarKey)} records SHA-256 ${existing.sha256} for ${o.segment}, the spool's copy has ${raw.digest()}: archived WAL is never replaced; find out which server wrote which`,
    );
  if (existing) return { ...existing, reused: true };
  const c = compress('zstd', createReadStream(file));
  const stored = new HashTap();
  try {
    await o.store.put(
      walSegmentKey(o.systemId, o.segment),
      c.stream.pipe(stored).pipe(gateOnSuccess(() => c.done)),
    );
  } catch (err) {
    c.kill();
    throw err;
  }
  const sidecar: WalSegmentSidecar = {
    sidecarVersion: 1,
    systemId: o.systemId,
    segment: o.segment,
    timeline: segmentTimeline(o.segment),
    segmentBytes: o.segmentBytes,
    size: raw.bytes,
    sha256: raw.digest(),
    compression: 'zstd',
    storedSize: stored.bytes,
    storedSha256: stored.digest(),
    archivedAt: new Date().toISOString(),
  };
  await o.store.putJson(sidecarKey, sidecar);
  return { ...sidecar, reused: false };
}

/** Stores a timeline history file as PostgreSQL wrote it. */
export async function storeHistory(store: BackupStore, systemId: string, spool: string, name: string) {
  const bytes = await readFile(path.join(spool, name));
  await store.put(timelineHistoryKey(systemId, name), Readable.from([bytes]), { contentType: 'text/plain' });
}
