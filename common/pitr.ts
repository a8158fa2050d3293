import type { DumpOptions } from './dump-options';
import type { RestoreWorkflowInput } from './restore';

/**
 * Where point-in-time recovery keeps its files in the backup store (issue 20), the one definition
 * shared by the WAL archiver, the base backups and `dbops restore --to-time`. Everything of one
 * PostgreSQL cluster lives under `pitr/<system identifier>/`: the identifier (pg_control_system())
 * changes only with a new initdb, so a rebuilt server can never mix its WAL with the old one's.
 * Workflow-safe: no Node built-ins.
 *
 *   pitr/<sysid>/wal/<timeline>/<segment>.zst       one completed 16 MiB segment, zstd
 *   pitr/<sysid>/wal/<timeline>/<segment>.zst.json  its sidecar: size, sha256 of the segment
 *   pitr/<sysid>/wal/<timeline>/<segment>.partial.zst(.json)  the segment still being received, and its sidecar
 *   pitr/<sysid>/wal/<timeline>.history             a timeline history file, as PostgreSQL wrote it
 *   pitr/<sysid>/base/<id>/...                      one base backup (pg_basebackup -Ft) and its manifests
 */

export const PITR_ROOT = 'pitr';

/** PostgreSQL's system identifier: a decimal uint64. */
export function isSystemIdentifier(value: string): boolean {
  return /^[0-9]{1,20}$/.test(value);
}

export function clusterPrefix(systemId: string): string {
  if (!isSystemIdentifier(systemId)) throw new Error(`not a PostgreSQL system identifier: ${systemId}`);
  return `${PITR_ROOT}/${systemId}`;
}

/** A WAL segment's file name: 24 hex digits (timeline, log, segment). */
export function isWalSegmentName(name: string): boolean {
  return /^[0-9A-F]{24}$/.test(name);
}

/** The timeline part of a segment name (its first 8 hex digits). */
export function segmentTimeline(segment: string): string {
  if (!isWalSegmentName(segment)) throw new Error(`not a WAL segment name: ${segment}`);
  return segment.slice(0, 8);
}

export function walPrefix(systemId: string): string {
  return `${clusterPrefix(systemId)}/wal`;
}

export function walSegmentKey(systemId: string, segment: string): string {
  return `${walPrefix(systemId)}/${segmentTimeline(segment)}/${segment}.zst`;
}

export function walSegmentSidecarKey(systemId: string, segment: string): string {
  return `${walSegmentKey(systemId, segment)}.json`;
}

/** The segment pg_receivewal is still writing, as far as it was received (replaced about every second). */
export function walPartialKey(systemId: string, segment: string): string {
  return `${walPrefix(systemId)}/${segmentTimeline(segment)}/${segment}.partial.zst`;
}

export function walPartialSidecarKey(systemId: string, segment: string): string {
  return `${walPartialKey(systemId, segment)}.json`;
}

/**
 * What a key of a timeline folder (relative to walTimelinePrefix) is: a completed segment, a
 * partial one, or either's sidecar; undefined for anything else. The one place that tells a
 * `<segment>.partial.zst.json` from a `<segment>.zst.json`: both end in `.zst.json`.
 */
export function parseWalArchiveKey(
  name: string,
): { readonly segment: string; readonly partial: boolean; readonly sidecar: boolean } | undefined {
  const m = /^([0-9A-F]{24})(\.partial)?\.zst(\.json)?$/.exec(name);
  return m ? { segment: m[1]!, partial: m[2] !== undefined, sidecar: m[3] !== undefined } : undefined;
}

/** The completed segments (their sidecars, the commit) among a timeline folder's keys, in listing order. */
export function archivedSegments(names: readonly string[]): string[] {
  return names.flatMap((n) => {
    const k = parseWalArchiveKey(n);
    return k && k.sidecar && !k.partial ? [k.segment] : [];
  });
}

/** `00000002.history` and the like. */
export function isTimelineHistoryName(name: string): boolean {
  return /^[0-9A-F]{8}\.history$/.test(name);
}

export function timelineHistoryKey(systemId: string, name: string): string {
  if (!isTimelineHistoryName(name)) throw new Error(`not a timeline history file name: ${name}`);
  return `${walPrefix(systemId)}/${name}`;
}

export function baseBackupPrefix(systemId: string, id?: string): string {
  return id === undefined ? `${clusterPrefix(systemId)}/base` : `${clusterPrefix(systemId)}/base/${id}`;
}

/** One object of a base backup: its archive, PostgreSQL's backup_manifest or dbops' manifest.json (common/basebackup.ts). */
export function baseBackupObjectKey(systemId: string, id: string, file: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(id) || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(file))
    throw new Error(`not a base backup object: ${id}/${file}`);
  return `${baseBackupPrefix(systemId, id)}/${file}`;
}

/*
 * WAL archiving (the archiver, `dbops wal check`, restore_command). The per-timeline index is the
 * listing itself: a timeline's folder holds `<segment>.zst` and its sidecar (and one partial, below), and
 * segment names are fixed-width hex, so a prefix listing (S3 and local alike return keys sorted)
 * is the timeline's segments in LSN order. Nothing is ever appended to or rewritten: each segment
 * is two new objects, and the sidecar, written last, is the segment's commit. A gap is two
 * neighbours in the listing that are not consecutive (findSegmentGaps).
 *
 * Besides them, the segment pg_receivewal is still writing is uploaded as `<segment>.partial.zst`
 * whenever it grew (at most about once a second), each put replacing the last, its sidecar
 * (WalPartialSidecar) written after it; both go once the completed segment is stored. A partial is
 * not a segment: listings, gaps and `dbops wal check` ignore it (archivedSegments); a recovery
 * replays it only when no later segment of its timeline exists (the last records before a crash).
 */

/** PostgreSQL's default (and the dev stack's) WAL segment size; sidecars record the server's own. */
export const DEFAULT_WAL_SEGMENT_BYTES = 16 * 1024 * 1024;

/** What `<segment>.zst.json` says about one archived segment. */
export interface WalSegmentSidecar {
  readonly sidecarVersion: 1;
  readonly systemId: string;
  readonly segment: string;
  /** 8 hex digits, as in the segment name. */
  readonly timeline: string;
  /** wal_segment_size of the server: the segment arithmetic of this timeline depends on it. */
  readonly segmentBytes: number;
  /** Bytes of the uncompressed segment (always segmentBytes for a completed one). */
  readonly size: number;
  /** SHA-256 (hex) of the uncompressed segment. */
  readonly sha256: string;
  readonly compression: 'zstd';
  /** Size and SHA-256 of the stored `.zst` object, so a check can prove it without decompressing. */
  readonly storedSize: number;
  readonly storedSha256: string;
  /** ISO time the archiver stored it. */
  readonly archivedAt: string;
}

/**
 * What `<segment>.partial.zst.json` says about the last upload of a segment still being received:
 * a segment sidecar's fields (`size` and `sha256` are the whole
 * zero-padded file's, as pg_receivewal writes it) plus where the WAL it holds ends.
 */
export interface WalPartialSidecar extends WalSegmentSidecar {
  /** The WAL it holds ends here: everything received before this LSN is in the object. */
  readonly receivedLsn: string;
  /** receivedLsn as an offset into the segment. */
  readonly receivedBytes: number;
}

/** Folder (with trailing slash) of one timeline's segments: `pitr/<sysid>/wal/<timeline>/`. */
export function walTimelinePrefix(systemId: string, timeline: string): string {
  if (!/^[0-9A-F]{8}$/.test(timeline)) throw new Error(`not a timeline id (8 hex digits): ${timeline}`);
  return `${walPrefix(systemId)}/${timeline}/`;
}

function segmentsPerLogId(segmentBytes: number): number {
  if (!Number.isInteger(segmentBytes) || segmentBytes < 1 << 20 || segmentBytes > 1 << 30)
    throw new Error(`not a WAL segment size: ${segmentBytes}`);
  if ((segmentBytes & (segmentBytes - 1)) !== 0) throw new Error(`not a power of two: ${segmentBytes}`);
  return 0x1_0000_0000 / segmentBytes;
}

/** A segment name's parts: timeline and the segment number (LSN / segment size). */
export function parseWalSegment(
  segment: string,
  segmentBytes = DEFAULT_WAL_SEGMENT_BYTES,
): { timeline: number; segno: number } {
  if (!isWalSegmentName(segment)) throw new Error(`not a WAL segment name: ${segment}`);
  const perLog = segmentsPerLogId(segmentBytes);
  const log = parseInt(segment.slice(8, 16), 16);
  const seg = parseInt(segment.slice(16, 24), 16);
  if (seg >= perLog)
    throw new Error(
      `${segment}: segment part ${seg} is beyond ${perLog - 1} for ${segmentBytes}-byte segments`,
    );
  // log < 2^32 and perLog <= 4096: the product stays far below 2^53, exact in a double.
  return { timeline: parseInt(segment.slice(0, 8), 16), segno: log * perLog + seg };
}

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');

/** The name of segment number `segno` on `timeline` (the inverse of parseWalSegment). */
export function walSegmentName(
  timeline: number,
  segno: number,
  segmentBytes = DEFAULT_WAL_SEGMENT_BYTES,
): string {
  const perLog = segmentsPerLogId(segmentBytes);
  return `${hex8(timeline)}${hex8(Math.floor(segno / perLog))}${hex8(segno % perLog)}`;
}

/** The segment after `segment` on the same timeline: 000000010000000A000000FF → 000000010000000B00000000 (16 MiB). */
export function nextWalSegment(segment: string, segmentBytes = DEFAULT_WAL_SEGMENT_BYTES): string {
  const { timeline, segno } = parseWalSegment(segment, segmentBytes);
  return walSegmentName(timeline, segno + 1, segmentBytes);
}

/** `C/DC619618` → its byte position (exact below 2^53 bytes, 8 PiB of WAL). */
export function parseLsn(lsn: string): number {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
  if (!m) throw new Error(`not an LSN (like 16/B374D848): ${lsn}`);
  return parseInt(m[1]!, 16) * 0x1_0000_0000 + parseInt(m[2]!, 16);
}

export function formatLsn(position: number): string {
  const hi = Math.floor(position / 0x1_0000_0000);
  const lo = position % 0x1_0000_0000;
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

/** The segment holding byte `position` on `timeline` (pg_walfile_name). */
export function segmentOfLsn(
  position: number,
  timeline: number,
  segmentBytes = DEFAULT_WAL_SEGMENT_BYTES,
): string {
  return walSegmentName(timeline, Math.floor(position / segmentBytes), segmentBytes);
}

/** The first byte after `segment`: where the WAL it holds ends. */
export function segmentEndLsn(segment: string, segmentBytes = DEFAULT_WAL_SEGMENT_BYTES): number {
  return (parseWalSegment(segment, segmentBytes).segno + 1) * segmentBytes;
}

export interface WalGap {
  /** The last segment present before the gap and the first after it. */
  readonly after: string;
  readonly before: string;
  /** The first and last missing segment, and how many are missing. */
  readonly firstMissing: string;
  readonly lastMissing: string;
  readonly missing: number;
}

/** Gaps in one timeline's segments (any order; duplicates ignored). */
export function findSegmentGaps(
  segments: readonly string[],
  segmentBytes = DEFAULT_WAL_SEGMENT_BYTES,
): WalGap[] {
  const parsed = [...new Set(segments)]
    .map((name) => ({ name, ...parseWalSegment(name, segmentBytes) }))
    .sort((a, b) => a.segno - b.segno);
  const gaps: WalGap[] = [];
  for (let i = 1; i < parsed.length; i++) {
    const prev = parsed[i - 1]!;
    const cur = parsed[i]!;
    if (prev.timeline !== cur.timeline)
      throw new Error(`findSegmentGaps takes one timeline: ${prev.name} and ${cur.name} differ`);
    if (cur.segno - prev.segno > 1)
      gaps.push({
        after: prev.name,
        before: cur.name,
        firstMissing: walSegmentName(cur.timeline, prev.segno + 1, segmentBytes),
        lastMissing: walSegmentName(cur.timeline, cur.segno - 1, segmentBytes),
        missing: cur.segno - prev.segno - 1,
      });
  }
  return gaps;
}

/** `3 segments 000000010000000A000000FE..000000010000000B00000000` or one name. */
export function describeGap(gap: WalGap): string {
  return gap.missing === 1
    ? `segment ${gap.firstMissing}`
    : `${gap.missing} segments ${gap.firstMissing}..${gap.lastMissing}`;
}

/*
 * Point-in-time restore (`dbops restore --to-time|--to-lsn|--to-latest`).
 */

/** Where a point-in-time recovery stops: just after the last commit at or before `time`, at `lsn`, or at the archive's end. */
export type RecoveryTarget =
  | { readonly kind: 'time'; readonly time: string }
  | { readonly kind: 'lsn'; readonly lsn: string }
  | { readonly kind: 'latest' };

export function describeRecoveryTarget(t: RecoveryTarget): string {
  if (t.kind === 'time') return `time ${t.time}`;
  if (t.kind === 'lsn') return `LSN ${t.lsn}`;
  return 'the end of the archived WAL';
}

/** What the temporary server reached, and what the recovered database holds (the approver's facts). */
export interface RecoveredPoint {
  readonly target: RecoveryTarget;
  /** The base backups combined, oldest first. */
  readonly baseBackups: readonly string[];
  /** pg_last_wal_replay_lsn() when recovery stopped. */
  readonly reachedLsn: string;
  /** pg_last_xact_replay_timestamp(): the commit time of the last transaction replayed (null: none since the base backup). */
  readonly lastTransactionAt: string | null;
  readonly walSegments: number;
  readonly walBytes: number;
  /** Exact rows per table of the recovered database (partitioned parents: the sum of their leaves). */
  readonly tables: readonly { schema: string; table: string; kind: string; rows: number }[];
  readonly rows: number;
  readonly schemaVersion: string | null;
  readonly extensions: readonly string[];
  readonly statisticsRestored: boolean;
  readonly durationMs: { readonly assemble: number; readonly recover: number; readonly copy: number };
}

/**
 * What the approver of a point-in-time restore sees besides the plan: the recovery was done before
 * the approval (into the shadow, nothing live touched), so these are facts, not estimates.
 */
export interface PointInTimePlan {
  readonly recoveryTarget: string;
  readonly baseBackups: readonly string[];
  readonly reachedLsn: string;
  /** The commit time of the last transaction the recovery replayed (null: none after the base backup). */
  readonly lastTransactionAt: string | null;
  readonly walSegments: number;
  /** How long the recovery took, before the approval: unpacking the base backups, replaying WAL, copying into the shadow. */
  readonly recoveryMs: { readonly assemble: number; readonly recover: number; readonly copy: number };
  readonly liveTargetRows: number | null;
  readonly recoveredRows: number;
  /** recoveredRows − liveTargetRows: what the restore takes away (negative) or brings back. */
  readonly rowDifference: number | null;
}

/**
 * A point-in-time restore: `database` as it was at `recovery`, into `target` (default the same).
 * `backup` names the recovery for messages and the signed request (pointInTimeSelector).
 */
export interface PointInTimeRestoreInput extends RestoreWorkflowInput {
  readonly database: string;
  readonly recovery: RecoveryTarget;
  /** pg_dump's owner and grant options (DBOPS_DUMP_NO_OWNER / _NO_PRIVILEGES), as for backups. */
  readonly dumpOptions?: DumpOptions;
}

/** The `backup` of a point-in-time restore: what a signed request names and messages show. */
export function pointInTimeSelector(recovery: RecoveryTarget): string {
  return recovery.kind === 'time'
    ? `point-in-time:${recovery.time}`
    : recovery.kind === 'lsn'
      ? `point-in-time:lsn:${recovery.lsn}`
      : 'point-in-time:latest';
}
