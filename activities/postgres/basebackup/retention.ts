import {
  BASE_BACKUP_FILES,
  type BaseBackupEntry,
  type BaseBackupKind,
  type BaseBackupManifest,
  lsnValue,
  parseBaseBackupId,
} from '../../../common/basebackup';
import {
  baseBackupPrefix,
  parseLsn,
  parseWalArchiveKey,
  parseWalSegment,
  walPrefix,
  walSegmentName,
  type WalSegmentSidecar,
} from '../../../common/pitr';
import type { BackupStore, ObjectInfo } from '../../storage';
import { listBaseBackupEntries } from './catalog';

/**
 * Base backup retention (issue 20): what a point-in-time restore can still start from. A full
 * backup and the incrementals built on it (its chain) are only usable together, so retention
 * counts chains: it keeps the chains of the newest `keepFull` full backups, deletes the older
 * base backups, then the archived WAL no kept backup needs (before the segment the oldest kept one
 * starts in). Timeline history files are never deleted: a restore on any timeline reads them.
 */

export interface BaseBackupRetentionPolicy {
  /** DBOPS_BASEBACKUP_KEEP_FULL: the newest full backups whose chains are kept (at least 1). */
  readonly keepFull: number;
}

/** A folder without manifest.json this old is a base backup that died (a running one is far younger). */
export const INCOMPLETE_BASE_BACKUP_MAX_AGE_MS = 24 * 3600 * 1000;

export interface BaseBackupDecision {
  readonly id: string;
  readonly kind: BaseBackupKind;
  readonly action: 'keep' | 'delete';
  readonly reason: string;
  readonly storedBytes: number;
}

export interface BaseBackupRetentionPlan {
  readonly decisions: readonly BaseBackupDecision[];
  /** Incomplete folders older than a day: removed. */
  readonly incomplete: readonly { readonly id: string; readonly storedBytes: number }[];
  /** The earliest WAL a kept backup starts from: WAL before its segment goes. Undefined: no WAL is deleted. */
  readonly walFrom?: { readonly backupId: string; readonly startLsn: string; readonly timeline: number };
}

/** The full backup an entry's chain starts from, following parentId; undefined when a link is missing. */
function chainRoot(
  manifest: BaseBackupManifest,
  byId: ReadonlyMap<string, BaseBackupManifest>,
): string | undefined {
  let m: BaseBackupManifest | undefined = manifest;
  for (let depth = 0; m && depth <= byId.size; depth++) {
    if (m.kind === 'full') return m.id;
    m = m.parentId === undefined ? undefined : byId.get(m.parentId);
  }
  return undefined;
}

/**
 * What retention keeps and deletes (pure: no store). Only complete base backups older than the
 * oldest kept full one are ever deleted; a complete one newer than it that is in no kept chain (an
 * incremental whose parent is gone) is kept, as dbops cannot tell what it is for. With no complete
 * full backup nothing complete is deleted and no WAL either.
 */
export function planBaseBackupRetention(
  entries: readonly BaseBackupEntry[],
  policy: BaseBackupRetentionPolicy,
  now: Date,
): BaseBackupRetentionPlan {
  if (!Number.isInteger(policy.keepFull) || policy.keepFull < 1)
    throw new Error(
      `base backup retention keeps ${policy.keepFull} full backups: it must keep at least 1 (DBOPS_BASEBACKUP_KEEP_FULL)`,
    );
  const complete = entries.filter((e): e is BaseBackupEntry & { manifest: BaseBackupManifest } =>
    Boolean(e.complete && e.manifest),
  );
  const incomplete = entries
    .filter(
      (e) =>
        !e.complete &&
        now.getTime() - parseBaseBackupId(e.id).time.getTime() > INCOMPLETE_BASE_BACKUP_MAX_AGE_MS,
    )
    .map((e) => ({ id: e.id, storedBytes: e.storedBytes }));
  const byId = new Map(complete.map((e) => [e.id, e.manifest]));
  const fulls = complete.filter((e) => e.kind === 'full').map((e) => e.id);
  fulls.sort();
  const keptFulls = new Set(fulls.slice(-policy.keepFull));
  const oldestKept = fulls.slice(-policy.keepFull)[0];
  const decide = (e: (typeof complete)[number]): BaseBackupDecision => {
    const root = chainRoot(e.manifest, byId);
    const base = { id: e.id, kind: e.kind, storedBytes: e.storedBytes };
    if (oldestKept === undefined)
      return { ...base, action: 'keep', reason: 'no complete full base backup yet: nothing is pruned' };
    if (root !== undefined && keptFulls.has(root))
      return {
        ...base,
        action: 'keep',
        reason:
          root === e.id
            ? `one of the newest ${policy.keepFull} full base backups`
            : `in the chain of kept full base backup ${root}`,
      };
    if (e.id > oldestKept)
      return { ...base, action: 'keep', reason: `newer than the oldest kept full base backup ${oldestKept}` };
    return {
      ...base,
      action: 'delete',
      reason:
        root === undefined
          ? `an incremental base backup whose chain has no full base backup, older than ${oldestKept}`
          : `in the chain of full base backup ${root}, older than the newest ${policy.keepFull}`,
    };
  };
  const decisions = complete.map(decide);
  const kept = complete.filter((_, i) => decisions[i]!.action === 'keep');
  const earliest = oldestKept === undefined ? undefined : kept.reduce(earlierStart);
  return {
    decisions,
    incomplete,
    ...(earliest && {
      walFrom: {
        backupId: earliest.id,
        startLsn: earliest.manifest.startLsn,
        timeline: earliest.manifest.timeline,
      },
    }),
  };
}

function earlierStart<T extends { manifest: BaseBackupManifest }>(a: T, b: T): T {
  return lsnValue(b.manifest.startLsn) < lsnValue(a.manifest.startLsn) ? b : a;
}

/** Deletes one base backup folder: manifest.json first, so a half-deleted one is never listed as complete. */
export async function deleteBaseBackupFolder(
  store: BackupStore,
  systemIdentifier: string,
  id: string,
): Promise<number> {
  parseBaseBackupId(id);
  const prefix = `${baseBackupPrefix(systemIdentifier, id)}/`;
  const objects = await store.list(prefix);
  const isManifest = (o: ObjectInfo) => o.key === `${prefix}${BASE_BACKUP_FILES.manifest}`;
  const ordered = [...objects.filter(isManifest), ...objects.filter((o) => !isManifest(o))];
  for (const o of ordered) await store.delete(o.key);
  return objects.reduce((sum, o) => sum + o.size, 0);
}

export interface WalPruneResult {
  readonly segments: number;
  readonly bytes: number;
  readonly firstSegment?: string;
  readonly lastSegment?: string;
  /** The segment the oldest kept base backup starts in: it and everything after it are kept. */
  readonly keptFrom?: string;
  /** Timeline folders left alone: no readable sidecar says their segment size. */
  readonly skippedTimelines: readonly string[];
}

/**
 * One timeline folder's objects, by segment: the `.zst`, its sidecar, and a `.partial.zst` (and
 * its sidecar) a crash left behind: a segment that old is complete elsewhere or never needed.
 */
function segmentsOf(objects: readonly ObjectInfo[], folder: string) {
  const segments = new Map<string, ObjectInfo[]>();
  for (const o of objects) {
    const k = parseWalArchiveKey(o.key.slice(folder.length));
    if (!k) continue;
    segments.set(k.segment, [...(segments.get(k.segment) ?? []), o]);
  }
  return segments;
}

/** wal_segment_size of a timeline, from one of its sidecars (undefined when none is readable). */
async function segmentBytesOf(
  store: BackupStore,
  objects: readonly ObjectInfo[],
): Promise<number | undefined> {
  for (const o of objects.filter((x) => x.key.endsWith('.zst.json')).slice(0, 3)) {
    const sidecar = await store.getJson<Partial<WalSegmentSidecar>>(o.key).catch(() => undefined);
    const bytes = sidecar?.segmentBytes;
    if (typeof bytes === 'number' && Number.isInteger(bytes) && bytes >= 1 << 20) return bytes;
  }
  return undefined;
}

/**
 * Deletes the archived WAL before the segment `from` starts in, on its timeline and older ones
 * (a newer timeline branched later, so it holds nothing that old). Each segment's sidecar goes
 * first: it is the segment's commit, so a half-deleted segment reads as never archived, not as
 * archived and damaged. History files (`wal/<timeline>.history`) are not in a timeline folder and
 * are never touched.
 */
export async function pruneArchivedWal(
  store: BackupStore,
  systemIdentifier: string,
  from: { startLsn: string; timeline: number },
  onProgress: (deletedSegments: number) => void = () => {},
): Promise<WalPruneResult> {
  const root = `${walPrefix(systemIdentifier)}/`;
  const all = await store.list(root);
  const folders = new Map<string, ObjectInfo[]>();
  for (const o of all) {
    const [timeline, name, ...rest] = o.key.slice(root.length).split('/');
    if (!timeline || !name || rest.length > 0 || !/^[0-9A-F]{8}$/.test(timeline)) continue;
    folders.set(timeline, [...(folders.get(timeline) ?? []), o]);
  }
  const start = parseLsn(from.startLsn);
  let segments = 0;
  let bytes = 0;
  let keptFrom: string | undefined;
  const deletedNames: string[] = [];
  const skippedTimelines: string[] = [];
  for (const [timeline, objects] of [...folders].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (parseInt(timeline, 16) > from.timeline) continue;
    const segmentBytes = await segmentBytesOf(store, objects);
    if (segmentBytes === undefined) {
      skippedTimelines.push(timeline);
      continue;
    }
    const firstKept = Math.floor(start / segmentBytes);
    if (parseInt(timeline, 16) === from.timeline)
      keptFrom = walSegmentName(from.timeline, firstKept, segmentBytes);
    const folder = `${root}${timeline}/`;
    for (const [name, parts] of [...segmentsOf(objects, folder)].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (parseWalSegment(name, segmentBytes).segno >= firstKept) continue;
      const ordered = [...parts].sort(
        (a, b) => Number(b.key.endsWith('.json')) - Number(a.key.endsWith('.json')),
      );
      for (const o of ordered) await store.delete(o.key);
      bytes += parts.reduce((sum, o) => sum + o.size, 0);
      deletedNames.push(name);
      onProgress(++segments);
    }
  }
  return {
    segments,
    bytes,
    ...(deletedNames.length > 0 && { firstSegment: deletedNames[0], lastSegment: deletedNames.at(-1) }),
    ...(keptFrom && { keptFrom }),
    skippedTimelines,
  };
}

export interface BaseBackupPruneResult {
  readonly keepFull: number;
  readonly kept: readonly string[];
  readonly deleted: readonly { readonly id: string; readonly reason: string; readonly bytes: number }[];
  /** Incomplete folders (no manifest.json) older than a day. */
  readonly incompleteRemoved: readonly { readonly id: string; readonly bytes: number }[];
  readonly wal: WalPruneResult;
  /** Everything deleted: base backups, incomplete folders and WAL. */
  readonly bytes: number;
}

/**
 * Applies base backup retention to one cluster's store: the plan (planBaseBackupRetention), the
 * old base backups (manifest first), the incomplete folders older than a day, then the WAL no
 * kept backup needs. Base backups go before WAL: a crash in between leaves WAL nothing uses (the
 * next run deletes it), never a listed backup without its WAL.
 */
export async function pruneBaseBackups(
  store: BackupStore,
  systemIdentifier: string,
  policy: BaseBackupRetentionPolicy,
  now: Date,
  onProgress: (detail: { phase: string; done: number }) => void = () => {},
): Promise<BaseBackupPruneResult> {
  const plan = planBaseBackupRetention(await listBaseBackupEntries(store, systemIdentifier), policy, now);
  const deleted: { id: string; reason: string; bytes: number }[] = [];
  for (const d of plan.decisions.filter((x) => x.action === 'delete')) {
    deleted.push({
      id: d.id,
      reason: d.reason,
      bytes: await deleteBaseBackupFolder(store, systemIdentifier, d.id),
    });
    onProgress({ phase: 'base backups', done: deleted.length });
  }
  const incompleteRemoved: { id: string; bytes: number }[] = [];
  for (const i of plan.incomplete) {
    const prefix = `${baseBackupPrefix(systemIdentifier, i.id)}/`;
    await store.sweepInterrupted(prefix, new Date(now.getTime() - INCOMPLETE_BASE_BACKUP_MAX_AGE_MS));
    incompleteRemoved.push({ id: i.id, bytes: await deleteBaseBackupFolder(store, systemIdentifier, i.id) });
    onProgress({ phase: 'incomplete base backups', done: incompleteRemoved.length });
  }
  const wal: WalPruneResult = plan.walFrom
    ? await pruneArchivedWal(store, systemIdentifier, plan.walFrom, (done) =>
        onProgress({ phase: 'WAL', done }),
      )
    : { segments: 0, bytes: 0, skippedTimelines: [] };
  const sum = (xs: readonly { bytes: number }[]) => xs.reduce((s, x) => s + x.bytes, 0);
  return {
    keepFull: policy.keepFull,
    kept: plan.decisions.filter((d) => d.action === 'keep').map((d) => d.id),
    deleted,
    incompleteRemoved,
    wal,
    bytes: sum(deleted) + sum(incompleteRemoved) + wal.bytes,
  };
}
