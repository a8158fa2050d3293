/**
 * Drill 3: the PostgreSQL server stops while a backup dumps. The backup must retry a bounded
 * number of times, then fail clearly, leave nothing in the store, keep `latest` where it was and
 * tell Slack; once the server is back, the next backup works and holds the database's rows.
 * The server is a private one (the shared dev stack's PostgreSQL serves other test files).
 */
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Client, Connection } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { listBackupEntries, type BackupStore } from '../../activities/storage';
import { latestKey, type BackupManifest, type LatestPointer } from '../../common/backup';
import { rootMessage } from '../../common/failures';
import { DBOPS_BACKUP_ID } from '../../common/search-attributes';
import { startBackup } from '../../src/client/backup';
import { activityProfiles } from '../../workflows/activity-profiles';
import { testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { populate, sql, waitFor } from '../integration/restore-fixtures';
import { startPrivatePostgres, type PrivatePostgres } from './kit/private-servers';
import { recordDrill, stepLogger } from './kit/report';
import { closeSession, drillEnv, openSession } from './kit/session';
import { startSlackReceiver, type SlackReceiver } from './kit/slack-receiver';
import { startWorkerProcess } from './kit/worker-process';

const suffix = uniqueSuffix();
const db = `t_drill_pgdown_${suffix}`;
const queue = `drill-pgdown-${suffix}`;
const backupDir = path.join(testRun().backupDir, `drill-pgdown-${suffix}`);
const ROWS = 150_000;

let pg: PrivatePostgres;
let slack: SlackReceiver;
let connection: Connection;
let client: Client;
let store: BackupStore;
const env = () => ({ ...pg.env, ...drillEnv(queue, backupDir) });
const config = () => testConfig({ ...env(), DBOPS_DATABASES: db });
let minute = 0;
const nextTime = () => new Date(Date.UTC(2032, 0, 1, 0, minute++));
const step = stepLogger('drill 3');

beforeAll(async () => {
  // With a password: the worker must reach it through PGPASSWORD like a production server.
  pg = await startPrivatePostgres({ password: `drill-${suffix}` });
  slack = await startSlackReceiver();
  await Promise.all([
    populate(config(), db, ROWS),
    startWorkerProcess({ ...env(), DBOPS_SLACK_WEBHOOK_URL: slack.url }),
  ]);
  ({ client, connection, store } = await openSession(config()));
  step('private PostgreSQL, database and worker ready');
}, 120_000);

afterAll(async () => {
  await closeSession({ connection, store });
  await slack?.close();
  await pg?.close(); // the database goes with the server's folder
  await rm(backupDir, { recursive: true, force: true });
});

/** Every file under the backup folder, relative to it (temporary files included). */
async function filesOnDisk(): Promise<string[]> {
  const entries = await readdir(backupDir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(backupDir, path.join(e.parentPath, e.name)))
    .sort();
}

/** The dump activity's attempts and final retry state, from the workflow's history. */
async function dumpAttempts(handle: Awaited<ReturnType<typeof startBackup>>) {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = events.find(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'dumpDatabase',
  );
  const id = String(scheduled?.eventId);
  const started = events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === id);
  const failed = events.find((e) => String(e.activityTaskFailedEventAttributes?.scheduledEventId) === id);
  return {
    attempts: started?.activityTaskStartedEventAttributes?.attempt ?? 0,
    retryState: failed?.activityTaskFailedEventAttributes?.retryState,
  };
}

it('PostgreSQL stopped mid-dump: bounded retries, clear failure, Slack told, nothing stored; next run ok', async () => {
  const baseline = await (await startBackup(client, config(), { database: db, now: nextTime() })).result();
  expect(baseline.outcome).toBe('succeeded');
  const filesBefore = await filesOnDisk();
  const slackBefore = slack.payloads.length;
  step(`baseline ${baseline.backupId}`);

  const handle = await startBackup(client, config(), { database: db, format: 'plain', now: nextTime() });
  await waitFor('pg_dump copying table data', async () => {
    const [r] = await sql<{ n: number }>(
      config(),
      undefined,
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'COPY %'",
      [db],
    );
    return r!.n > 0 ? true : undefined;
  });
  step('pg_dump is copying: stopping PostgreSQL');
  const stoppedAt = Date.now();
  await pg.stop('fast');
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  const failedAfterMs = Date.now() - stoppedAt;
  step(`backup ended ${failedAfterMs} ms after the stop: ${rootMessage(err)}`);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const message = rootMessage(err);
  expect(message).toMatch(new RegExp(`${db}|${pg.port}`));

  // Bounded: the streaming profile's attempts, then the workflow gave up.
  const { attempts, retryState } = await dumpAttempts(handle);
  const maxAttempts = activityProfiles.streaming.retry.maximumAttempts;
  expect(attempts).toBe(maxAttempts);
  expect(retryState).toBe(temporal.api.enums.v1.RetryState.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED);
  // ...and in bounded time: the profile's backoffs (5 s + 10 s) plus three quick refusals.
  expect(failedAfterMs).toBeLessThan(60_000);

  // Nothing of the failed run is visible or left on disk; latest did not move.
  const failedId = (await handle.describe()).typedSearchAttributes.get(DBOPS_BACKUP_ID);
  expect(failedId).toMatch(new RegExp(`^${db}_`));
  const entries = await listBackupEntries(store, db);
  expect(entries.map((e) => [e.id, e.complete])).toEqual([[baseline.backupId, true]]);
  expect(await store.list(`${db}/${failedId}/`)).toEqual([]);
  expect(await filesOnDisk()).toEqual(filesBefore);
  expect((await store.getJson<LatestPointer>(latestKey(db)))?.id).toBe(baseline.backupId);

  // Slack got the failure, naming the database and what went wrong.
  await waitFor('the failure notice', async () => (slack.payloads.length > slackBefore ? true : undefined));
  const notice = slack.payloads.slice(slackBefore).find((p) => /failed/.test(p.text ?? ''));
  expect(notice?.text).toContain(db);
  const body = JSON.stringify(notice);
  expect(body).toContain(message.slice(0, 60).replace(/["\\]/g, ''));

  // Back up: the next run works and holds the database's rows.
  await pg.start();
  step('PostgreSQL started again');
  const next = await (await startBackup(client, config(), { database: db, now: nextTime() })).result();
  expect(next.outcome).toBe('succeeded');
  const manifest = (await store.getJson<BackupManifest>(`${db}/${next.backupId}/manifest.json`))!;
  const counts = await sql<{ t: string; n: string }>(
    config(),
    db,
    `SELECT 'users' AS t, count(*)::text AS n FROM users UNION ALL SELECT 'events', count(*)::text FROM events
     UNION ALL SELECT 'blobs', count(*)::text FROM blobs`,
  );
  for (const c of counts) {
    expect(manifest.tables.find((t) => t.table === c.t)?.rows).toBe(Number(c.n));
  }
  expect((await store.getJson<LatestPointer>(latestKey(db)))?.id).toBe(next.backupId);
  step(`next backup ${next.backupId} succeeded`);

  recordDrill({
    drill: '3. PostgreSQL stopped mid-backup',
    fault:
      'private PostgreSQL stopped (pg_ctl -m fast) while pg_dump ran COPY; started again after the failure',
    dataCheck: `0 objects of the failed run on disk, latest unchanged; next backup's manifest rows = live counts (users ${ROWS})`,
    outcome: `failed after ${attempts}/${maxAttempts} dump attempts, ${(failedAfterMs / 1000).toFixed(1)} s; Slack: "${notice?.text}"; next backup succeeded`,
  });
}, 90_000);
