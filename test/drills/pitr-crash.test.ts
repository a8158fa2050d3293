/**
 * Issue 20's crash drill: PostgreSQL killed hard (`pg_ctl stop -m immediate`: SIGQUIT to the
 * postmaster, every backend and walsender ends at once, no shutdown checkpoint) while a writer
 * commits a row every 100 ms, then a point-in-time restore to the latest archived WAL. Without the
 * partial segment upload everything in the segment being written at the crash would be lost; with
 * it (and pg_receivewal --synchronous) the restore may lose only what pg_receivewal had not
 * received. On a private PostgreSQL 18 (the shared dev server must never be killed).
 *
 * The archived WAL up to the crash is what counts: the archiver is stopped before the server is
 * started again (crash recovery from its own pg_wal), or it would stream the rest afterwards. The
 * server must run again for the restore (the shadow database lives on it); the restore goes into a
 * new database `app_after_crash`, and the restarted server's own `app` is the reference: every
 * committed row is there.
 */
import { open, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Client as PgClient } from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pgClientConfig } from '../../activities/postgres/connection';
import { spoolDir } from '../../activities/postgres/wal';
import { createBackupStore } from '../../activities/storage';
import {
  archivedSegments,
  formatLsn,
  isWalSegmentName,
  parseLsn,
  parseWalSegment,
  segmentEndLsn,
  walPartialSidecarKey,
  walTimelinePrefix,
  type WalPartialSidecar,
} from '../../common/pitr';
import { walArchiverWorkflowId } from '../../common/ids';
import { startPointInTimeRestore } from '../../src/client/pitr-restore';
import { decideRestore, pollRestoreStatus } from '../../src/client/restore';
import { startWalArchiver, stopWalArchiver } from '../../src/client/wal';
import type { Config } from '../../src/config';
import { uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import { sql, waitFor } from '../integration/restore-fixtures';
import { pitrDrillConfig } from './kit/pitr';
import { closeAllPrivateServers, startPrivatePostgres, type PrivatePostgres } from './kit/private-servers';
import { recordDrill, stepLogger } from './kit/report';

const suffix = uniqueSuffix();
const db = 'app';
const restored = 'app_after_crash';
const step = stepLogger('pitr-crash');
let pg: PrivatePostgres;
let tmp: string;
let config: Config;
let tw: TestWorker;
let systemId: string;
let archiverRunning = false;

const q = <T = Record<string, unknown>>(text: string, params: unknown[] = [], database = db) =>
  sql<T>(config, database, text, params);

/** Where the WAL in a pg_receivewal file ends: it zero-fills a new segment, so after the last non-zero byte. */
async function spoolReceivedEnd(): Promise<{ segment: string; lsn: number }> {
  const dir = spoolDir(config.wal.spoolDir, systemId, config.wal.slot);
  const partials = (await readdir(dir))
    .filter((n) => n.endsWith('.partial'))
    .map((n) => n.slice(0, -'.partial'.length))
    .filter(isWalSegmentName)
    .sort((a, b) => parseWalSegment(a).segno - parseWalSegment(b).segno);
  const segment = partials.at(-1);
  if (!segment) throw new Error(`no .partial in the spool ${dir}`);
  const fh = await open(path.join(dir, `${segment}.partial`), 'r');
  try {
    const buf = Buffer.alloc(16 * 1024 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    let end = bytesRead;
    while (end > 0 && buf[end - 1] === 0) end--;
    return { segment, lsn: parseWalSegment(segment).segno * 16 * 1024 * 1024 + end };
  } finally {
    await fh.close();
  }
}

beforeAll(async () => {
  pg = await startPrivatePostgres();
  ({ tmp, config } = await pitrDrillConfig(pg, 'pitr_crash', suffix, db));
  tw = await startTestWorker(config);
  await q(`CREATE DATABASE ${db}`, [], 'postgres');
  await q('CREATE TABLE crash_rows (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
  systemId = (await startWalArchiver(tw.client, config, { pollMs: 200, heartbeatTimeout: '5s' })).systemId;
  archiverRunning = true;
  // As the daily schedule starts it: an incremental one, which falls back to full in an empty store.
  const first = await tw.client.workflow.execute('baseBackupWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId: `drill-pitr-crash-first-base-${suffix}`,
    args: [{ kind: 'incremental', trigger: 'scheduled' }],
  });
  expect(first.kind).toBe('full');
}, 180_000);

afterAll(async () => {
  if (tw && systemId && archiverRunning) await stopWalArchiver(tw.client, systemId).catch(() => undefined);
  await tw?.stop();
  await closeAllPrivateServers();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** One row every 100 ms until the server dies: the ids whose COMMIT returned, each with the WAL position right after it. */
async function writeUntilCrash(crashAfterMs: number): Promise<{
  committed: Map<number, number>;
  inFlight: number | undefined;
}> {
  const c = new PgClient(pgClientConfig(config.pg, db));
  await c.connect();
  c.on('error', () => undefined); // the crash ends the connection
  const committed = new Map<number, number>();
  let inFlight: number | undefined;
  const crash = (async () => {
    await new Promise((r) => setTimeout(r, crashAfterMs));
    step(`crash: pg_ctl stop -m immediate after ${committed.size} commits`);
    await pg.stop('immediate');
  })();
  try {
    for (let id = 1; ; id++) {
      inFlight = id;
      // Autocommit: the INSERT returning is the COMMIT returning. The next statement's position is
      // at or after the end of its commit record (this writer is the only one).
      await c.query('INSERT INTO crash_rows (id) VALUES ($1)', [id]);
      inFlight = undefined;
      committed.set(id, -1);
      const [r] = (await c.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows;
      committed.set(id, parseLsn(r!.lsn));
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch {
    // The server is gone.
  } finally {
    await crash;
    await c.end().catch(() => undefined);
  }
  return { committed, inFlight };
}

it('PostgreSQL killed hard while a row is committed every 100 ms: the restore to the latest archived WAL loses at most what pg_receivewal had not received', async () => {
  const store = createBackupStore(config.storage);
  try {
    const timeline = walTimelinePrefix(systemId, '00000001');
    await waitFor('the archiver streaming the current segment (a partial upload in the store)', async () =>
      (await store.list(timeline)).some((o) => o.key.endsWith('.partial.zst.json')),
    );
    step('archiver streaming; writer starts');
    const { committed, inFlight } = await writeUntilCrash(5_000);
    expect(committed.size).toBeGreaterThan(20);

    // The archiver's attempt fails once pg_receivewal lost the server; before that it stores what it received.
    const handle = tw.client.workflow.getHandle(walArchiverWorkflowId(systemId));
    await waitFor(
      'the archiving attempt to fail on the crash',
      async () => {
        const pending = (await handle.describe()).raw.pendingActivities?.[0];
        return (pending?.attempt ?? 1) > 1 || pending?.lastFailure != null;
      },
      60_000,
    );
    const received = await spoolReceivedEnd();
    const partial = (await store.getJson<WalPartialSidecar>(
      walPartialSidecarKey(systemId, received.segment),
    ))!;
    expect(partial).toBeDefined();
    step(`spool received up to ${formatLsn(received.lsn)}; store's partial ${partial.receivedLsn}`);
    // Everything pg_receivewal received is in the store.
    expect(parseLsn(partial.receivedLsn)).toBeGreaterThanOrEqual(received.lsn);
    const completedEnd = Math.max(
      0,
      ...archivedSegments((await store.list(timeline)).map((o) => o.key.slice(timeline.length))).map((s) =>
        segmentEndLsn(s),
      ),
    );
    // Only the crash-time archive counts: no more streaming once the server is back.
    expect(await stopWalArchiver(tw.client, systemId)).toBe(true);
    archiverRunning = false;
    await pg.start();
    step('server restarted (crash recovery); archiver stopped');

    const onServer = new Set((await q<{ id: number }>('SELECT id FROM crash_rows')).map((r) => r.id));
    // Durability of the server itself: every commit that returned survived its crash recovery.
    expect([...committed.keys()].filter((id) => !onServer.has(id))).toEqual([]);

    const h = await startPointInTimeRestore(tw.client, config, {
      recovery: { kind: 'latest' },
      database: db,
      target: restored,
      allowUnlistedTarget: true,
      requestedBy: 'drill',
      key: 'none',
      now: new Date(Date.UTC(2031, 0, 1)),
    });
    const status = await pollRestoreStatus(h, (s) => s.phase === 'awaiting-approval');
    if (status?.phase !== 'awaiting-approval') await h.result(); // surfaces the failure
    await decideRestore(tw.client, h.workflowId, {
      decision: 'approve',
      by: 'approver',
      planHash: status!.planHash!,
      key: 'none',
    });
    const result = await h.result();
    expect(result.outcome).toBe('restored');
    const back = new Set(
      (await q<{ id: number }>('SELECT id FROM crash_rows', [], restored)).map((r) => r.id),
    );

    const lost = [...committed.keys()].filter((id) => !back.has(id));
    const notReceived = [...committed].filter(([, lsn]) => lsn < 0 || lsn > received.lsn).map(([id]) => id);
    // Nothing the restore has was never committed (at most the row whose COMMIT the crash cut off).
    expect([...back].filter((id) => !committed.has(id) && id !== inFlight)).toEqual([]);
    expect(lost.length).toBeLessThanOrEqual(notReceived.length);
    // The partial was replayed: rows written after the last completed segment are back.
    const inPartial = [...committed].filter(([, lsn]) => lsn > completedEnd && lsn <= received.lsn);
    expect(inPartial.length).toBeGreaterThan(0);
    expect(inPartial.filter(([id]) => !back.has(id))).toEqual([]);
    step(
      `committed ${committed.size}, restored ${back.size}, lost ${lost.length}, not received ${notReceived.length}`,
    );
    recordDrill({
      drill: '20b. PostgreSQL crash, restore to latest',
      fault: `pg_ctl stop -m immediate (SIGQUIT, no shutdown checkpoint) ${committed.size} commits into a writer committing every 100 ms; archiver stopped before the restart`,
      dataCheck: `${committed.size} committed, ${back.size} restored into ${restored}: ${lost.length} lost; pg_receivewal had not received ${notReceived.length} (spool ended at ${formatLsn(received.lsn)}, store's partial ${partial.segment} at ${partial.receivedLsn}); ${inPartial.length} rows only in the partial segment, all restored`,
      outcome: `restored from ${status!.plan!.pointInTime!.baseBackups.join(' + ')}, reached ${status!.plan!.pointInTime!.reachedLsn}; without the partial upload all ${inPartial.length} would be lost`,
    });
  } finally {
    await store.close();
  }
}, 300_000);
