/**
 * Drill 2: the Temporal server restarts (same SQLite file) while a backup dumps and while a
 * restore runs pg_restore. The worker, a real `dbops worker` process, must carry on by itself
 * (no restart of the worker), and both operations must finish with the right data.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Client, Connection, WorkflowHandle } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { listBackupEntries, type BackupStore } from '../../activities/storage';
import { backupFileKey, latestKey, type BackupManifest, type LatestPointer } from '../../common/backup';
import { startBackup } from '../../src/client/backup';
import { decideRestore, startRestore } from '../../src/client/restore';
import { restoreStatusQuery } from '../../workflows/restore-messages';
import { testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { databasesLike, fingerprint, populate, sql, waitFor } from '../integration/restore-fixtures';
import {
  startPrivatePostgres,
  startPrivateTemporal,
  type PrivatePostgres,
  type PrivateTemporal,
} from './kit/private-servers';
import { recordDrill, stepLogger } from './kit/report';
import { closeSession, drillEnv, openSession } from './kit/session';
import { startWorkerProcess, type WorkerProcess } from './kit/worker-process';

const suffix = uniqueSuffix();
const db = `t_drill_trestart_${suffix}`;
const queue = `drill-trestart-${suffix}`;
const backupDir = path.join(testRun().backupDir, `drill-trestart-${suffix}`);
const ROWS = 100_000;

let temporal: PrivateTemporal;
let pg: PrivatePostgres;
let worker: WorkerProcess;
let connection: Connection;
let client: Client;
let store: BackupStore;
// temporal.env last: the private server's address and namespace, not the run's.
const workerEnv = () => ({ ...pg.env, ...drillEnv(queue, backupDir), DBOPS_DATABASES: db, ...temporal.env });
const config = () => testConfig(workerEnv());
const step = stepLogger('drill 2');

beforeAll(async () => {
  // The data lives on a private PostgreSQL too: dropping a database on the shared one waits for a
  // checkpoint of everybody's writes, and this drill needs nothing of the shared server.
  [temporal, pg] = await Promise.all([startPrivateTemporal(), startPrivatePostgres()]);
  step('private Temporal and PostgreSQL ready');
  [worker] = await Promise.all([
    startWorkerProcess(workerEnv(), { logFile: path.join(path.dirname(temporal.logFile), 'worker.log') }),
    populate(config(), db, ROWS),
  ]);
  ({ client, connection, store } = await openSession(config()));
  step('worker ready');
}, 120_000);

afterAll(async () => {
  await closeSession({ connection, store });
  await Promise.all([temporal?.close(), pg?.close()]); // the databases go with pg's folder
  await rm(backupDir, { recursive: true, force: true });
  step('private servers, worker and backups removed');
});

/** Our database's sessions whose name starts with `prefix` running `queryLike` (pg_stat_activity). */
async function sessions(prefix: string, queryLike: string): Promise<number> {
  const [r] = await sql<{ n: number }>(
    config(),
    undefined,
    'SELECT count(*)::int AS n FROM pg_stat_activity WHERE starts_with(datname, $1) AND query ILIKE $2',
    [prefix, queryLike],
  );
  return r!.n;
}

/**
 * The last run of activity `name` in the workflow's history: its attempt and when its completion
 * was recorded (proof that the restart happened while it ran: recorded after the server went down).
 */
async function activityRun(handle: WorkflowHandle, name: string) {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = [...events]
    .reverse()
    .find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === name);
  const id = String(scheduled?.eventId);
  const started = events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === id);
  const completed = events.find(
    (e) => String(e.activityTaskCompletedEventAttributes?.scheduledEventId) === id,
  );
  return {
    attempt: started?.activityTaskStartedEventAttributes?.attempt ?? 0,
    completedAt: completed?.eventTime ? tsToMs(completed.eventTime) : 0,
  };
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

let backupId: string;
let fingerprintAtBackup: Record<string, string>;

it('Temporal restarted mid-backup: the same worker finishes the backup; objects complete, latest moved', async () => {
  fingerprintAtBackup = await fingerprint(config(), db);
  const handle = await startBackup(client, config(), { database: db, format: 'plain' });
  await waitFor('pg_dump copying table data', async () =>
    (await sessions(db, 'COPY %')) > 0 ? true : undefined,
  );
  step('pg_dump is copying: restarting Temporal');
  const down = Date.now();
  await temporal.restart();
  const downMs = Date.now() - down;
  step(`Temporal back after ${downMs} ms`);
  const result = await handle.result();
  step(`backup ${result.outcome}: ${result.backupId}`);
  expect(result.outcome).toBe('succeeded');
  expect(worker.child.exitCode).toBeNull(); // the same worker process did it
  const dump = await activityRun(handle, 'dumpDatabase');
  step(
    `dump attempt ${dump.attempt}, completion recorded ${dump.completedAt - down} ms after the stop began`,
  );
  expect(dump.completedAt).toBeGreaterThan(down);

  backupId = result.backupId;
  const manifest = (await store.getJson<BackupManifest>(`${db}/${backupId}/manifest.json`))!;
  expect(manifest.id).toBe(backupId);
  const file = await store.localFile!(backupFileKey(db, backupId, manifest.file));
  expect(await sha256(file)).toBe(manifest.sha256);
  expect((await store.head(backupFileKey(db, backupId, manifest.file)))?.size).toBe(manifest.sizeBytes);
  const users = manifest.tables.find((t) => t.table === 'users');
  expect(users?.rows).toBe(ROWS);
  const entries = await listBackupEntries(store, db);
  expect(entries.map((e) => [e.id, e.complete])).toEqual([[backupId, true]]);
  expect((await store.getJson<LatestPointer>(latestKey(db)))?.id).toBe(backupId);
  // Nothing else in the backup's folder (no temporary or second file from a retried attempt).
  const keys = (await store.list(`${db}/${backupId}/`)).map((o) => o.key).sort();
  expect(keys).toEqual([`${db}/${backupId}/${manifest.file}`, `${db}/${backupId}/manifest.json`].sort());

  recordDrill({
    drill: '2a. Temporal restart mid-backup',
    fault: `Temporal dev server stopped and started (same db file, ${downMs} ms) while pg_dump ran COPY`,
    dataCheck: `manifest SHA-256 = file's (${manifest.sizeBytes} B); users ${users?.rows} rows = ${ROWS}; latest → it; 1 backup listed`,
    outcome: `backup succeeded, same worker process; dump attempt ${dump.attempt}, its completion recorded ${dump.completedAt - down} ms after the stop began; ${(result.durationMs / 1000).toFixed(1)} s`,
  });
}, 90_000);

it('Temporal restarted mid-restore: the restore finishes; target holds the backup rows, no shadow left', async () => {
  expect(backupId).toBeDefined();
  await sql(config(), db, 'DELETE FROM users WHERE id % 3 = 0');
  const changed = await fingerprint(config(), db);
  expect(changed).not.toEqual(fingerprintAtBackup);
  const handle = await startRestore(client, config(), { backup: backupId, requestedBy: 'alice' });
  const waiting = await waitFor('awaiting approval', async () => {
    const s = await handle.query(restoreStatusQuery);
    return s.phase === 'awaiting-approval' ? s : undefined;
  });
  await decideRestore(client, handle.workflowId, {
    decision: 'approve',
    by: 'bob',
    planHash: waiting.planHash!,
  });
  await waitFor('pg_restore writing the shadow', async () =>
    (await sessions(`${db}__restore_`, 'COPY %')) > 0 ? true : undefined,
  );
  step('pg_restore is copying: restarting Temporal');
  const down = Date.now();
  await temporal.restart();
  const downMs = Date.now() - down;
  step(`Temporal back after ${downMs} ms`);
  const result = await handle.result();
  step(`restore ${result.outcome}`);
  expect(result.outcome).toBe('restored');
  expect(worker.child.exitCode).toBeNull();
  const restore = await activityRun(handle, 'restoreBackupInto');
  step(
    `pg_restore attempt ${restore.attempt}, completion recorded ${restore.completedAt - down} ms after the stop began`,
  );
  expect(restore.completedAt).toBeGreaterThan(down);
  const after = await fingerprint(config(), db);
  expect(after).toEqual(fingerprintAtBackup);
  expect(await fingerprint(config(), result.preRestoreDatabase!)).toEqual(changed);
  expect(await databasesLike(config(), `${db}__restore_`)).toEqual([]);

  recordDrill({
    drill: '2b. Temporal restart mid-restore',
    fault: `Temporal dev server stopped and started (same db file, ${downMs} ms) while pg_restore ran COPY`,
    dataCheck: `target fingerprint (rows + md5 of 4 tables) = backup's; users ${after.users?.split(':')[0]} rows; kept copy = pre-restore data; 0 shadows`,
    outcome: `restore 'restored', same worker process; pg_restore attempt ${restore.attempt}, its completion recorded ${restore.completedAt - down} ms after the stop began`,
  });
}, 90_000);
