import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import {
  DEFAULT_WAL_SEGMENT_BYTES,
  describeGap,
  findSegmentGaps,
  isTimelineHistoryName,
  isWalSegmentName,
  walPrefix,
  walSegmentKey,
  walSegmentSidecarKey,
  type WalGap,
  type WalSegmentSidecar,
} from '../../../common/pitr';
import type { BackupStore } from '../../storage';
import { decompress, HashTap } from '../dump-pipeline';

export interface WalTimelineReport {
  readonly timeline: string;
  /** Segments with both the object and its sidecar. */
  readonly segments: number;
  readonly first?: string;
  readonly last?: string;
  readonly gaps: WalGap[];
  /** `.zst` without a sidecar (an upload cut short) or a sidecar without its `.zst`. */
  readonly incomplete: string[];
  /** With --verify: segments whose object does not match its sidecar, and why. */
  readonly mismatched: { segment: string; problem: string }[];
}

export interface WalCheckReport {
  readonly systemId: string;
  readonly timelines: WalTimelineReport[];
  readonly histories: string[];
  readonly verified: boolean;
  /** One line per problem; empty when the archive is contiguous (and matches, with --verify). */
  readonly problems: string[];
}

/**
 * Proves the archive of one cluster contiguous, per timeline, from one listing (the index, see
 * common/pitr.ts). With `verify`, every object is read back, its SHA-256 compared with the
 * sidecar's, decompressed and the segment's SHA-256 and size compared too.
 */
export async function checkWalArchive(
  store: BackupStore,
  systemId: string,
  options: { readonly verify?: boolean } = {},
): Promise<WalCheckReport> {
  const prefix = `${walPrefix(systemId)}/`;
  const byTimeline = new Map<string, { zst: Set<string>; json: Set<string> }>();
  const histories: string[] = [];
  for (const o of await store.list(prefix)) {
    const rest = o.key.slice(prefix.length);
    if (isTimelineHistoryName(rest)) {
      histories.push(rest);
      continue;
    }
    const m = /^([0-9A-F]{8})\/([0-9A-F]{24})\.zst(\.json)?$/.exec(rest);
    if (!m || !isWalSegmentName(m[2]!) || !m[2]!.startsWith(m[1]!)) continue;
    const t = byTimeline.get(m[1]!) ?? { zst: new Set(), json: new Set() };
    (m[3] ? t.json : t.zst).add(m[2]!);
    byTimeline.set(m[1]!, t);
  }
  const timelines: WalTimelineReport[] = [];
  for (const [timeline, t] of [...byTimeline].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const complete = [...t.zst].filter((s) => t.json.has(s)).sort();
    const incomplete = [...new Set([...t.zst, ...t.json])].filter((s) => !complete.includes(s)).sort();
    const first = complete[0];
    const sidecar = first
      ? await store.getJson<WalSegmentSidecar>(walSegmentSidecarKey(systemId, first))
      : undefined;
    const segmentBytes = sidecar?.segmentBytes ?? DEFAULT_WAL_SEGMENT_BYTES;
    const mismatched = options.verify ? await verifySegments(store, systemId, complete) : [];
    timelines.push({
      timeline,
      segments: complete.length,
      first,
      last: complete.at(-1),
      gaps: findSegmentGaps([...complete, ...incomplete], segmentBytes),
      incomplete,
      mismatched,
    });
  }
  const problems = timelines.flatMap((t) => [
    ...t.gaps.map(
      (g) => `timeline ${t.timeline}: missing ${describeGap(g)} (between ${g.after} and ${g.before})`,
    ),
    ...t.incomplete.map((s) => `timeline ${t.timeline}: ${s} is incomplete (object or sidecar missing)`),
    ...t.mismatched.map((m) => `timeline ${t.timeline}: ${m.segment} ${m.problem}`),
  ]);
  return { systemId, timelines, histories: histories.sort(), verified: options.verify === true, problems };
}

async function verifySegments(store: BackupStore, systemId: string, segments: readonly string[]) {
  const mismatched: { segment: string; problem: string }[] = [];
  for (const segment of segments) {
    const problem = await verifySegment(store, systemId, segment);
    if (problem) mismatched.push({ segment, problem });
  }
  return mismatched;
}

/** Reads one segment back: the stored bytes against the sidecar, then the decompressed ones. */
export async function verifySegment(
  store: BackupStore,
  systemId: string,
  segment: string,
): Promise<string | undefined> {
  const sidecar = await store.getJson<WalSegmentSidecar>(walSegmentSidecarKey(systemId, segment));
  if (!sidecar) return 'has no sidecar';
  const stored = new HashTap();
  const raw = new HashTap();
  const d = decompress('zstd', (await store.get(walSegmentKey(systemId, segment))).pipe(stored));
  try {
    await pipeline(
      d.stream,
      raw,
      new Writable({
        write: (_chunk, _enc, done) => done(),
      }),
    );
    await d.done;
  } catch (err) {
    return `does not decompress: ${err instanceof Error ? err.message : String(err)}`;
  }
  const storedSha = stored.digest();
  const rawSha = raw.digest();
  if (storedSha !== sidecar.storedSha256 || stored.bytes !== sidecar.storedSize)
    return `stored object has SHA-256 ${storedSha} (${stored.bytes} bytes), its sidecar says ${sidecar.storedSha256} (${sidecar.storedSize} bytes)`;
  if (rawSha !== sidecar.sha256 || raw.bytes !== sidecar.size)
    return `decompresses to SHA-256 ${rawSha} (${raw.bytes} bytes), its sidecar says ${sidecar.sha256} (${sidecar.size} bytes)`;
  return undefined;
}
