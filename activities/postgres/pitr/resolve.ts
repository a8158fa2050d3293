import { type BaseBackupEntry, type BaseBackupManifest, lsnValue } from '../../../common/basebackup';
import { FailureType, failure } from '../../../common/failures';
import {
  archivedSegments,
  describeRecoveryTarget,
  findSegmentGaps,
  parseLsn,
  segmentOfLsn,
  walSegmentSidecarKey,
  walTimelinePrefix,
  type RecoveryTarget,
  type WalSegmentSidecar,
} from '../../../common/pitr';
import type { BackupStore } from '../../storage';

/**
 * Which base backups a point-in-time recovery starts from: the newest proven one that was
 * consistent before the target (its stop LSN, or its stop time, at or before it), and the chain of
 * backups it builds on back to its full one. Pure: `dbops restore --to-time` plans with it.
 */
export function chooseBaseChain(
  entries: readonly BaseBackupEntry[],
  target: RecoveryTarget,
): BaseBackupManifest[] {
  const proven = entries
    .filter((e) => e.complete && e.manifest?.verification.verdict === 'passed')
    .map((e) => e.manifest!)
    .sort((a, b) => (a.id < b.id ? -1 : 1));
  if (proven.length === 0)
    throw failure(
      FailureType.NotFound,
      'no verified base backup of this server is in the store: take one with `dbops basebackup --wait` (and keep `dbops wal start` running) before a point-in-time restore',
    );
  const usable = proven.filter((m) =>
    target.kind === 'latest'
      ? true
      : target.kind === 'lsn'
        ? lsnValue(m.stopLsn) <= lsnValue(target.lsn)
        : Date.parse(m.stoppedAt) <= Date.parse(target.time),
  );
  const newest = usable.at(-1);
  if (!newest)
    throw failure(
      FailureType.Refused,
      `cannot recover to ${describeRecoveryTarget(target)}: the oldest verified base backup, ${proven[0]!.id}, became consistent at ${proven[0]!.stoppedAt} (LSN ${proven[0]!.stopLsn}); choose a later target`,
    );
  const byId = new Map(proven.map((m) => [m.id, m]));
  const chain = [newest];
  while (chain[0]!.kind === 'incremental') {
    const parent = chain[0]!.parentId === undefined ? undefined : byId.get(chain[0]!.parentId);
    if (!parent)
      throw failure(
        FailureType.IntegrityCheckFailed,
        `base backup ${chain[0]!.id} builds on ${chain[0]!.parentId ?? '(no parent recorded)'}, which is not in the store as a verified backup: the chain is broken; take a full base backup`,
      );
    chain.unshift(parent);
  }
  return chain;
}

/**
 * Refuses before any work when the archive cannot cover the recovery: a gap in the WAL between the
 * base backup's start and the target (for a time target: a gap whose next segment was already
 * archived by then), or no WAL at all. A gap the listing cannot place (after a time target's
 * segments) is found by the recovery itself, which names it too.
 */
export async function assertWalCovers(
  store: BackupStore,
  systemId: string,
  base: BaseBackupManifest,
  target: RecoveryTarget,
): Promise<{ lastSegment: string; lastArchivedAt: string }> {
  const timeline = base.timeline.toString(16).toUpperCase().padStart(8, '0');
  const prefix = walTimelinePrefix(systemId, timeline);
  const first = segmentOfLsn(parseLsn(base.startLsn), base.timeline);
  // Completed segments only: a `.partial.zst.json` is neither a segment nor a gap (recovery may replay it at the end).
  const segments = archivedSegments((await store.list(prefix)).map((o) => o.key.slice(prefix.length))).filter(
    (s) => s >= first,
  );
  const needsUpTo = target.kind === 'lsn' ? segmentOfLsn(parseLsn(target.lsn), base.timeline) : undefined;
  if (segments.length === 0 || segments[0] !== first)
    throw failure(
      FailureType.IntegrityCheckFailed,
      `cannot recover from base backup ${base.id}: its first WAL segment ${first} is not in the archive (${store.describe(prefix)}); is \`dbops wal start\` running? \`dbops wal check\` shows what is there`,
    );
  for (const gap of findSegmentGaps(segments)) {
    let before = target.kind === 'latest' || (needsUpTo !== undefined && gap.firstMissing <= needsUpTo);
    if (target.kind === 'time') {
      const next = await store.getJson<WalSegmentSidecar>(walSegmentSidecarKey(systemId, gap.before));
      before = next !== undefined && Date.parse(next.archivedAt) <= Date.parse(target.time);
    }
    if (before)
      throw failure(
        FailureType.IntegrityCheckFailed,
        `cannot recover to ${describeRecoveryTarget(target)}: WAL segment ${gap.firstMissing}${gap.missing > 1 ? ` (and ${gap.missing - 1} after it, up to ${gap.lastMissing})` : ''} is missing from the archive (${store.describe(prefix)}), between ${gap.after} and ${gap.before}; recover to a point before ${gap.after} ends, or put the segment back`,
      );
  }
  const last = segments.at(-1)!;
  const sidecar = await store.getJson<WalSegmentSidecar>(walSegmentSidecarKey(systemId, last));
  return { lastSegment: last, lastArchivedAt: sidecar?.archivedAt ?? '' };
}
