/**
 * Base backup retention on a real local store (files on disk): synthetic base backups (manifest,
 * archive, backup_manifest) and archived WAL segments with sidecars, as the workflow and the
 * archiver lay them out (common/pitr.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { listBaseBackupEntries } from '../../activities/postgres/basebackup/catalog';
import { planBaseBackupRetention, pruneBaseBackups } from '../../activities/postgres/basebackup/retention';
import { type BackupStore, createBackupStore } from '../../activities/storage';
import { BASE_BACKUP_FILES, type BaseBackupKind, type BaseBackupManifest } from '../../common/basebackup';
import {
  baseBackupObjectKey,
  DEFAULT_WAL_SEGMENT_BYTES,
  timelineHistoryKey,
  walPartialKey,
  walSegmentKey,
  walSegmentName,
  walSegmentSidecarKey,
  type WalSegmentSidecar,
} from '../../common/pitr';

const SYSID = '7715406755856891660';
const NOW = new Date('2026-11-22T00:00:00Z');
const root = mkdtempSync(path.join(os.tmpdir(), 'dbops-bb-retention-'));
let store: BackupStore;
let n = 0;

afterAll(() => rmSync(root, { recursive: true, force: true }));
beforeEach(() => {
  store = createBackupStore({ kind: 'local', dir: path.join(root, `store-${++n}`) });
});

const put = (key: string, bytes: number) => store.put(key, Readable.from([Buffer.alloc(bytes, 7)]));
/** `0/<segno * 16 MiB + 0x28>` on timeline 1: where a backup starting in segment `segno` starts. */
const lsnIn = (segno: number) => `0/${(segno * DEFAULT_WAL_SEGMENT_BYTES + 0x28).toString(16).toUpperCase()}`;

/** A complete base backup: archive, backup_manifest, then manifest.json (as the workflow writes them). */
async function baseBackup(id: string, startSegno: number, parentId?: string): Promise<void> {
  const kind = id.endsWith('-full') ? 'full' : ('incremental' as BaseBackupKind);
  await put(baseBackupObjectKey(SYSID, id, BASE_BACKUP_FILES.archive), 1000);
  await put(baseBackupObjectKey(SYSID, id, BASE_BACKUP_FILES.pgManifest), 100);
  const manifest: BaseBackupManifest = {
    manifestVersion: 1,
    id,
    kind,
    ...(parentId && { parentId }),
    systemIdentifier: SYSID,
    serverVersion: '18.6',
    pgBasebackupVersion: '18.6',
    timeline: 1,
    startLsn: lsnIn(startSegno),
    stopLsn: lsnIn(startSegno + 1),
    startedAt: '2026-11-01T01:30:00Z',
    stoppedAt: '2026-11-01T01:31:00Z',
    finishedAt: '2026-11-01T01:32:00Z',
    durationMs: 120_000,
    file: BASE_BACKUP_FILES.archive,
    sizeBytes: 1000,
    sha256: 'a'.repeat(64),
    rawBytes: 5000,
    pgManifest: { file: BASE_BACKUP_FILES.pgManifest, sizeBytes: 100, sha256: 'b'.repeat(64) },
    verification: {
      verdict: 'passed',
      tool: 'pg_verifybackup 18.6',
      checks: 'all',
      verifiedAt: '2026-11-01T01:32:00Z',
    },
    workflowId: `basebackup-${kind}-x`,
    runId: 'r',
  };
  await store.putJson(baseBackupObjectKey(SYSID, id, BASE_BACKUP_FILES.manifest), manifest);
}

/** Archived segments `from..to` of `timeline`: the `.zst` (300 bytes) and its sidecar. */
async function archiveWal(timeline: number, from: number, to: number): Promise<void> {
  for (let segno = from; segno <= to; segno++) {
    const segment = walSegmentName(timeline, segno);
    await put(walSegmentKey(SYSID, segment), 300);
    const sidecar: WalSegmentSidecar = {
      sidecarVersion: 1,
      systemId: SYSID,
      segment,
      timeline: segment.slice(0, 8),
      segmentBytes: DEFAULT_WAL_SEGMENT_BYTES,
      size: DEFAULT_WAL_SEGMENT_BYTES,
      sha256: 'c'.repeat(64),
      compression: 'zstd',
      storedSize: 300,
      storedSha256: 'd'.repeat(64),
      archivedAt: '2026-11-01T00:00:00Z',
    };
    await store.putJson(walSegmentSidecarKey(SYSID, segment), sidecar);
  }
}

const walSegments = async (timeline = '00000001') =>
  (await store.list(`pitr/${SYSID}/wal/${timeline}/`))
    .map((o) => path.posix.basename(o.key))
    .filter((k) => k.endsWith('.zst') && !k.endsWith('.partial.zst'))
    .map((k) => k.slice(0, 24));
const baseIds = async () =>
  (await listBaseBackupEntries(store, SYSID)).map((e) => `${e.id}${e.complete ? '' : ' (incomplete)'}`);

/** Three weekly chains, an orphan incremental, two incomplete folders, WAL segments 1..0x24 and a timeline 2. */
async function threeWeeks(): Promise<void> {
  await baseBackup('20261101T013000Z-full', 2);
  await baseBackup('20261102T013000Z-incremental', 4, '20261101T013000Z-full');
  await baseBackup('20261103T013000Z-incremental', 6, '20261031T013000Z-full'); // its full is gone
  await baseBackup('20261108T013000Z-full', 0x10);
  await baseBackup('20261109T013000Z-incremental', 0x12, '20261108T013000Z-full');
  await baseBackup('20261115T013000Z-full', 0x20);
  await baseBackup('20261116T013000Z-incremental', 0x22, '20261115T013000Z-full');
  // A base backup that died two days ago, and one running now (both without manifest.json).
  await put(baseBackupObjectKey(SYSID, '20261120T013000Z-full', BASE_BACKUP_FILES.archive), 700);
  await put(baseBackupObjectKey(SYSID, '20261121T230000Z-incremental', BASE_BACKUP_FILES.archive), 50);
  await archiveWal(1, 1, 0x24);
  await put(walSegmentKey(SYSID, walSegmentName(1, 0)), 300); // an upload cut short: no sidecar
  // The segment being received now, and one a crash left behind long ago (its segment is complete).
  await put(walPartialKey(SYSID, walSegmentName(1, 0x25)), 200);
  await put(walPartialKey(SYSID, walSegmentName(1, 5)), 200);
  await archiveWal(2, 0x23, 0x26); // a newer timeline, and its history file
  await put(timelineHistoryKey(SYSID, '00000002.history'), 40);
}

describe('base backup retention', () => {
  it('keeps the chains of the newest KEEP_FULL full backups and the WAL from the oldest kept start; deletes the rest', async () => {
    await threeWeeks();
    const stored = new Map((await listBaseBackupEntries(store, SYSID)).map((e) => [e.id, e.storedBytes]));
    const r = await pruneBaseBackups(store, SYSID, { keepFull: 2 }, NOW);
    expect(r.kept).toEqual([
      '20261108T013000Z-full',
      '20261109T013000Z-incremental',
      '20261115T013000Z-full',
      '20261116T013000Z-incremental',
    ]);
    const oldChain = 'in the chain of full base backup 20261101T013000Z-full, older than the newest 2';
    expect(r.deleted).toEqual([
      { id: '20261101T013000Z-full', reason: oldChain, bytes: stored.get('20261101T013000Z-full') },
      {
        id: '20261102T013000Z-incremental',
        reason: oldChain,
        bytes: stored.get('20261102T013000Z-incremental'),
      },
      {
        id: '20261103T013000Z-incremental',
        reason:
          'an incremental base backup whose chain has no full base backup, older than 20261108T013000Z-full',
        bytes: stored.get('20261103T013000Z-incremental'),
      },
    ]);
    expect(r.deleted[0]!.bytes).toBeGreaterThan(1100); // archive, backup_manifest and manifest.json
    expect(r.incompleteRemoved).toEqual([{ id: '20261120T013000Z-full', bytes: 700 }]);
    // The oldest kept backup starts in segment 0x10: segments 0..0x0F go (0 had no sidecar), 0x10.. stay.
    expect(r.wal).toEqual({
      segments: 16,
      bytes: expect.any(Number),
      firstSegment: walSegmentName(1, 0),
      lastSegment: walSegmentName(1, 0x0f),
      keptFrom: walSegmentName(1, 0x10),
      skippedTimelines: [],
    });
    expect(await walSegments()).toEqual(
      Array.from({ length: 0x24 - 0x10 + 1 }, (_, i) => walSegmentName(1, 0x10 + i)),
    );
    expect(await walSegments('00000002')).toHaveLength(4);
    expect(await store.head(timelineHistoryKey(SYSID, '00000002.history'))).toBeDefined();
    expect(await baseIds()).toEqual([
      '20261108T013000Z-full',
      '20261109T013000Z-incremental',
      '20261115T013000Z-full',
      '20261116T013000Z-incremental',
      '20261121T230000Z-incremental (incomplete)',
    ]);
    // The bytes are what was stored: 15 segments with sidecars, one without; the backups and the dead folder.
    expect(r.wal.bytes).toBe(16 * 300 + (await sidecarBytes()) * 15 + 200);
    expect(await store.head(walPartialKey(SYSID, walSegmentName(1, 5)))).toBeUndefined();
    expect(await store.head(walPartialKey(SYSID, walSegmentName(1, 0x25)))).toBeDefined();
    expect(r.bytes).toBe(r.deleted.reduce((s, d) => s + d.bytes, 0) + 700 + r.wal.bytes);

    // Again: nothing left to delete.
    const again = await pruneBaseBackups(store, SYSID, { keepFull: 2 }, NOW);
    expect([again.deleted, again.incompleteRemoved, again.wal.segments, again.bytes]).toEqual([[], [], 0, 0]);
  });

  it('KEEP_FULL=1 never deletes the newest full chain, with a newer incremental on it', async () => {
    await threeWeeks();
    const r = await pruneBaseBackups(store, SYSID, { keepFull: 1 }, NOW);
    expect(r.kept).toEqual(['20261115T013000Z-full', '20261116T013000Z-incremental']);
    expect(r.deleted.map((d) => d.id)).toEqual([
      '20261101T013000Z-full',
      '20261102T013000Z-incremental',
      '20261103T013000Z-incremental',
      '20261108T013000Z-full',
      '20261109T013000Z-incremental',
    ]);
    expect(r.wal.keptFrom).toBe(walSegmentName(1, 0x20));
    expect((await walSegments())[0]).toBe(walSegmentName(1, 0x20));
  });

  it('a half-deleted base backup is never listed complete: manifest.json goes first', async () => {
    await baseBackup('20261101T013000Z-full', 2);
    await baseBackup('20261108T013000Z-full', 0x10);
    // The store fails after its first delete, as a worker dying mid-retention would stop.
    let deletes = 0;
    const failing: BackupStore = Object.create(store, {
      delete: {
        value: async (key: string) => {
          if (++deletes > 1) throw new Error('store unreachable');
          await store.delete(key);
        },
      },
    }) as BackupStore;
    await expect(pruneBaseBackups(failing, SYSID, { keepFull: 1 }, NOW)).rejects.toThrow('store unreachable');
    expect(await baseIds()).toEqual(['20261101T013000Z-full (incomplete)', '20261108T013000Z-full']);
    // A later run removes the rest of it (its id is weeks old).
    const r = await pruneBaseBackups(store, SYSID, { keepFull: 1 }, NOW);
    expect(r.incompleteRemoved.map((i) => i.id)).toEqual(['20261101T013000Z-full']);
    expect(await baseIds()).toEqual(['20261108T013000Z-full']);
  });

  it('without a complete full backup nothing complete is deleted and no WAL; KEEP_FULL below 1 is refused', async () => {
    await baseBackup('20261103T013000Z-incremental', 6, '20261031T013000Z-full');
    await archiveWal(1, 1, 8);
    const r = await pruneBaseBackups(store, SYSID, { keepFull: 2 }, NOW);
    expect(r.kept).toEqual(['20261103T013000Z-incremental']);
    expect(r.deleted).toEqual([]);
    expect(r.wal.segments).toBe(0);
    expect(await walSegments()).toHaveLength(8);
    expect(() => planBaseBackupRetention([], { keepFull: 0 }, NOW)).toThrow(
      'it must keep at least 1 (DBOPS_BASEBACKUP_KEEP_FULL)',
    );
  });

  it('WAL of a timeline whose segment size no sidecar says is left alone, and reported', async () => {
    await baseBackup('20261108T013000Z-full', 0x10);
    for (let segno = 1; segno < 4; segno++) await put(walSegmentKey(SYSID, walSegmentName(1, segno)), 300);
    const r = await pruneBaseBackups(store, SYSID, { keepFull: 1 }, NOW);
    expect(r.wal).toEqual({ segments: 0, bytes: 0, skippedTimelines: ['00000001'] });
    expect(await walSegments()).toHaveLength(3);
  });
});

async function sidecarBytes(): Promise<number> {
  const [o] = (await store.list(`pitr/${SYSID}/wal/00000001/`)).filter((x) => x.key.endsWith('.json'));
  return o!.size;
}
