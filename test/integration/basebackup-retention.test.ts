/**
 * Base backup retention through the real workflow: a worker with DBOPS_BASEBACKUP_KEEP_FULL=1 takes
 * a full base backup of the dev stack PostgreSQL into this file's own store, which already holds an
 * older chain, a dead incomplete backup and archived WAL (synthetic objects in the archiver's
 * layout, with this cluster's system identifier). The run prunes them and returns what it pruned.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBaseBackupEntries } from '../../activities/postgres/basebackup/catalog';
import { pgClientConfig } from '../../activities/postgres/connection';
import { type BackupStore, createBackupStore } from '../../activities/storage';
import { BASE_BACKUP_FILES, type BaseBackupManifest } from '../../common/basebackup';
import {
  baseBackupObjectKey,
  parseLsn,
  timelineHistoryKey,
  walSegmentKey,
  walSegmentName,
  walSegmentSidecarKey,
  type WalSegmentSidecar,
} from '../../common/pitr';
import { startBaseBackup } from '../../src/client/basebackup';
import { testConfig, uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';

const suffix = uniqueSuffix();
const taskQueue = `test-bbretention-${suffix}`;
const OLD_FULL = '20200101T013000Z-full';
const OLD_INCREMENTAL = '20200102T013000Z-incremental';
const DEAD = '20200103T013000Z-full';
let dir: string;
let tw: TestWorker;
let store: BackupStore;
let server: { systemId: string; timeline: number; segmentBytes: number; segno: number };

async function serverFacts() {
  const c = new Client(pgClientConfig(tw.config.pg, 'postgres'));
  await c.connect();
  try {
    const row = (
      await c.query(
        `SELECT (SELECT system_identifier::text FROM pg_control_system()) AS sysid,
                (SELECT timeline_id FROM pg_control_checkpoint()) AS tli,
                current_setting('wal_segment_size', true) AS seg,
                pg_current_wal_lsn()::text AS lsn`,
      )
    ).rows[0] as { sysid: string; tli: number; seg: string; lsn: string };
    const segmentBytes = Number(/^(\d+)MB$/.exec(row.seg)![1]) * 1024 * 1024;
    return {
      systemId: row.sysid,
      timeline: row.tli,
      segmentBytes,
      segno: Math.floor(parseLsn(row.lsn) / segmentBytes),
    };
  } finally {
    await c.end();
  }
}

const put = (key: string, bytes: number) => store.put(key, Readable.from([Buffer.alloc(bytes, 1)]));

async function oldBaseBackup(id: string, parentId?: string): Promise<void> {
  const kind = parentId ? 'incremental' : 'full';
  await put(baseBackupObjectKey(server.systemId, id, BASE_BACKUP_FILES.archive), 2000);
  await put(baseBackupObjectKey(server.systemId, id, BASE_BACKUP_FILES.pgManifest), 200);
  const m: BaseBackupManifest = {
    manifestVersion: 1,
    id,
    kind,
    ...(parentId && { parentId }),
    systemIdentifier: server.systemId,
    serverVersion: '18.6',
    pgBasebackupVersion: '18.6',
    timeline: server.timeline,
    startLsn: `0/${(2 * server.segmentBytes + 0x28).toString(16).toUpperCase()}`,
    stopLsn: `0/${(2 * server.segmentBytes + 0x200).toString(16).toUpperCase()}`,
    startedAt: '2020-01-01T01:30:00Z',
    stoppedAt: '2020-01-01T01:31:00Z',
    finishedAt: '2020-01-01T01:32:00Z',
    durationMs: 120_000,
    file: BASE_BACKUP_FILES.archive,
    sizeBytes: 2000,
    sha256: '0'.repeat(64),
    rawBytes: 9000,
    pgManifest: { file: BASE_BACKUP_FILES.pgManifest, sizeBytes: 200, sha256: '1'.repeat(64) },
    verification: {
      verdict: 'passed',
      tool: 'pg_verifybackup 18.6',
      checks: 'synthetic',
      verifiedAt: '2020-01-01T01:32:00Z',
    },
    workflowId: 'synthetic',
    runId: 'synthetic',
  };
  await store.putJson(baseBackupObjectKey(server.systemId, id, BASE_BACKUP_FILES.manifest), m);
}

async function archived(segno: number): Promise<string> {
  const segment = walSegmentName(server.timeline, segno, server.segmentBytes);
  await put(walSegmentKey(server.systemId, segment), 500);
  const sidecar: WalSegmentSidecar = {
    sidecarVersion: 1,
    systemId: server.systemId,
    segment,
    timeline: segment.slice(0, 8),
    segmentBytes: server.segmentBytes,
    size: server.segmentBytes,
    sha256: '2'.repeat(64),
    compression: 'zstd',
    storedSize: 500,
    storedSha256: '3'.repeat(64),
    archivedAt: '2020-01-01T00:00:00Z',
  };
  await store.putJson(walSegmentSidecarKey(server.systemId, segment), sidecar);
  return segment;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 't_bbretention_'));
  const config = testConfig({
    DBOPS_TASK_QUEUE: taskQueue,
    DBOPS_BACKUP_DIR: dir,
    DBOPS_BASEBACKUP_KEEP_FULL: '1',
  });
  tw = await startTestWorker(config);
  store = createBackupStore({ kind: 'local', dir });
  server = await serverFacts();
}, 60_000);

afterAll(async () => {
  await store?.close();
  await tw?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('base backup retention in the workflow', () => {
  it('a new full base backup with KEEP_FULL=1 prunes the older chain, a dead folder and the WAL before its start', async () => {
    await oldBaseBackup(OLD_FULL);
    await oldBaseBackup(OLD_INCREMENTAL, OLD_FULL);
    await put(baseBackupObjectKey(server.systemId, DEAD, BASE_BACKUP_FILES.archive), 300);
    const before = [await archived(1), await archived(2), await archived(3)];
    // Segments after the new backup's start (the server's WAL moves on; these are far ahead) stay.
    const after = [await archived(server.segno + 4096), await archived(server.segno + 4097)];
    const history = timelineHistoryKey(
      server.systemId,
      `${walSegmentName(server.timeline + 1, 0).slice(0, 8)}.history`,
    );
    await put(history, 41);

    const result = await (await startBaseBackup(tw.client, tw.config, { kind: 'full' })).result();
    expect(result.pruneError).toBeUndefined();
    const pruned = result.pruned!;
    expect(pruned.keepFull).toBe(1);
    expect(pruned.kept).toEqual([result.id]);
    expect(pruned.deleted.map((d) => d.id)).toEqual([OLD_FULL, OLD_INCREMENTAL]);
    expect(pruned.deleted.map((d) => d.bytes)).toEqual([expect.any(Number), expect.any(Number)]);
    expect(pruned.deleted[0]!.bytes).toBeGreaterThan(2200);
    expect(pruned.incompleteRemoved).toEqual([{ id: DEAD, bytes: 300 }]);
    expect(pruned.wal).toMatchObject({
      segments: 3,
      firstSegment: before[0],
      lastSegment: before[2],
      keptFrom: walSegmentName(
        server.timeline,
        Math.floor(parseLsn(result.startLsn) / server.segmentBytes),
        server.segmentBytes,
      ),
      skippedTimelines: [],
    });
    expect(pruned.bytes).toBe(pruned.deleted.reduce((s, d) => s + d.bytes, 0) + 300 + pruned.wal.bytes);

    // The store now holds the new backup, the WAL after its start and the history file.
    expect((await listBaseBackupEntries(store, server.systemId)).map((e) => [e.id, e.complete])).toEqual([
      [result.id, true],
    ]);
    for (const s of before) expect(await store.head(walSegmentKey(server.systemId, s))).toBeUndefined();
    for (const s of after) {
      expect(await store.head(walSegmentKey(server.systemId, s))).toBeDefined();
      expect(await store.head(walSegmentSidecarKey(server.systemId, s))).toBeDefined();
    }
    expect(await store.head(history)).toBeDefined();

    // The next full one prunes the first: never the newest chain.
    const next = await (
      await startBaseBackup(tw.client, tw.config, { kind: 'full', now: new Date(Date.now() + 60_000) })
    ).result();
    expect(next.pruned).toMatchObject({ kept: [next.id], deleted: [{ id: result.id }] });
  }, 600_000);
});
