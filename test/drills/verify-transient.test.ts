/**
 * Drill 8 (PostgreSQL restart): a verification whose server restarts during the test restore must
 * end without a verdict and try again later, or "could not verify" when the server stays away;
 * the backup's record (verification.json, latest-verified, retention's good set) stays as it was.
 * The server is a private one; the worker is a real `dbops worker` process. The restart hits
 * pg_restore, seen copying or indexing in pg_stat_activity; the outage hits the comparison, held
 * by the failpoint verify.before-compare with its two counting sessions open.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Client, Connection, WorkflowHandle } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import { Client as PgClient } from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pgClientConfig } from '../../activities/postgres/connection';
import { resolveBackup } from '../../activities/postgres/restore/source';
import { listBackupEntries, type BackupStore } from '../../activities/storage';
import { backupStatus, isGoodBackup } from '../../common/backup';
import { failureTypeOf, rootMessage } from '../../common/failures';
import { LATEST_VERIFIED, type VerifyWorkflowInput, type VerifyWorkflowResult } from '../../common/restore';
import type { verifyBackupWorkflow } from '../../workflows/verify';
import { testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { databasesLike, fingerprint, populate, takeBackup, waitFor } from '../integration/restore-fixtures';
import { startPrivatePostgres, type PrivatePostgres } from './kit/private-servers';
import { recordDrill, stepLogger } from './kit/report';
import { closeSession, drillEnv, openSession } from './kit/session';
import { startWorkerProcess, type WorkerProcess } from './kit/worker-process';

const suffix = uniqueSuffix();
const db = `t_drill8_${suffix}`;
const queue = `drill8-${suffix}`;
const backupDir = path.join(testRun().backupDir, `drill8-${suffix}`);
const PAUSE_MS = 3000;
const ROWS = 100_000;

let pg: PrivatePostgres;
let worker: WorkerProcess;
let connection: Connection;
let client: Client;
let store: BackupStore;
const env = () => ({ ...pg.env, ...drillEnv(queue, backupDir) });
const config = () => testConfig(env());
const step = stepLogger('drill 8');

let runs = 0;
function startVerify(backupId: string, extra: Partial<VerifyWorkflowInput> = {}) {
  return client.workflow.start<typeof verifyBackupWorkflow>('verifyBackupWorkflow', {
    taskQueue: queue,
    workflowId: `drill8-verify-${suffix}-${++runs}`,
    args: [{ backupId, maximumAttempts: 1, rounds: 2, roundDelayMs: 1000, ...extra }],
  });
}

/** Resolves when the worker has reached the failpoint for the `n`-th time since it started. */
function atFailpoint(n: number): Promise<void> {
  return worker.waitForLog(new RegExp(`(dbops failpoint verify\\.before-compare[\\s\\S]*){${n}}`), 60_000);
}

const recordFile = (backupId: string) => path.join(backupDir, db, backupId, 'verification.json');

/** What the store says of the backup: its status, whether latest-verified and retention count it. */
async function standing(backupId: string) {
  const entries = await listBackupEntries(store, db);
  const entry = entries.find((e) => e.id === backupId)!;
  return {
    status: backupStatus(entry),
    latestVerified: (await resolveBackup(store, LATEST_VERIFIED, db)).manifest.id,
    good: entries.filter(isGoodBackup).map((e) => e.id),
  };
}

async function timersStarted(handle: WorkflowHandle): Promise<number> {
  const events = (await handle.fetchHistory()).events ?? [];
  return events.filter((e) => e.timerStartedEventAttributes).length;
}

/** Type and message of each failed activity attempt, from the workflow's history. */
async function failedActivities(handle: WorkflowHandle): Promise<{ type: string; message: string }[]> {
  const events = (await handle.fetchHistory()).events ?? [];
  return events
    .map((e) => e.activityTaskFailedEventAttributes?.failure)
    .filter((f) => f)
    .map((f) => ({ type: f!.applicationFailureInfo?.type ?? '', message: f!.message ?? '' }));
}

/** Resolves once pg_restore is copying or indexing in the scratch database (a session of its own). */
async function pgRestoreBusy(): Promise<string> {
  const c = new PgClient(pgClientConfig(config().pg, 'postgres'));
  c.on('error', () => undefined);
  await c.connect();
  try {
    for (const until = Date.now() + 60_000; Date.now() < until;) {
      const r = await c.query<{ query: string }>(
        `SELECT query FROM pg_stat_activity WHERE starts_with(datname, $1) AND state = 'active'
           AND (query ILIKE 'COPY %' OR query ILIKE 'CREATE INDEX %' OR query ILIKE 'ALTER TABLE %')`,
        [`${db}__verify_`],
      );
      if (r.rows[0]) return r.rows[0].query.slice(0, 60);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error('pg_restore never showed up in pg_stat_activity');
  } finally {
    await c.end().catch(() => undefined);
  }
}

beforeAll(async () => {
  pg = await startPrivatePostgres();
  [worker] = await Promise.all([
    startWorkerProcess({ ...env(), DBOPS_FAILPOINTS: `verify.before-compare=pause:${PAUSE_MS}` }),
    populate(config(), db, ROWS),
  ]);
  ({ client, connection, store } = await openSession(config()));
  step('private PostgreSQL, database and worker ready');
}, 120_000);

afterAll(async () => {
  await closeSession({ connection, store });
  await pg?.close(); // the databases go with the server's folder
  await rm(backupDir, { recursive: true, force: true });
});

it('8. PostgreSQL restarted mid-verify: no verdict, tried again later; the backup stays verified', async () => {
  const rows = await fingerprint(config(), db);
  const { backupId } = await takeBackup(client, config(), db);
  const first: VerifyWorkflowResult = await (await startVerify(backupId)).result();
  expect(first.status).toBe('passed');
  const record = await readFile(recordFile(backupId), 'utf8');
  const before = await standing(backupId);
  expect(before).toEqual({ status: 'verified', latestVerified: backupId, good: [backupId] });
  step(`${backupId} verified`);

  // Restarted under pg_restore in round 1: no verdict; round 2, after a durable timer, passes. The
  // server is back before the timer fires: the drill starts it once round 1 has ended (a timer
  // long enough for pg_ctl start; the default between rounds is 30 min).
  const restarted = await startVerify(backupId, { roundDelayMs: 6000 });
  const busy = await pgRestoreBusy();
  await pg.stop('fast');
  step(`PostgreSQL stopped while pg_restore ran ${JSON.stringify(busy)}`);
  // Round 1 ends: the workflow waits for round 2 (a timer), or (the bug) ends with a verdict.
  await waitFor(
    'round 1 to end',
    async () =>
      (await timersStarted(restarted)) > 0 || (await restarted.describe()).status.name !== 'RUNNING',
  );
  await pg.start();
  step('round 1 ended; PostgreSQL started again');
  // Between the rounds: nothing recorded.
  expect(await readFile(recordFile(backupId), 'utf8')).toBe(record);
  const second: VerifyWorkflowResult = await restarted.result();
  expect(second.status).toBe('passed');
  expect(await timersStarted(restarted)).toBe(1);
  // pg_restore's failure, and the drop of the scratch database while the server was down (logged;
  // round 2 recreates it): none of them a verdict.
  const failures = await failedActivities(restarted);
  const killed = failures.find((f) => f.message.startsWith('pg_restore'));
  expect(killed?.type).toBe('Unavailable');
  expect(killed!.message).toMatch(/^pg_restore into \S+ exited 1: .*connection/);
  for (const f of failures)
    expect(['IntegrityCheckFailed', 'VerificationFailed', 'ProcessFailed']).not.toContain(f.type);
  expect(await databasesLike(config(), `${db}__verify_`)).toEqual([]);
  expect(worker.log()).toMatch(/test restore ended without a verdict/);
  step(`round 1: ${killed!.message.slice(0, 300)}; round 2 passed`);

  // Stopped during round 1 and still down for round 2: "could not verify", nothing recorded.
  const recordAfterSecond = await readFile(recordFile(backupId), 'utf8');
  const down = await startVerify(backupId);
  await atFailpoint(3);
  await pg.stop('fast');
  const err = await down.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  step(`with the server down: ${rootMessage(err)}`);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect(failureTypeOf(err)).toBe('Unavailable');
  expect(rootMessage(err)).toMatch(
    new RegExp(`^could not verify backup ${backupId}: 2 test restores 1\\.0 s apart ended without a verdict`),
  );
  const details = ((err as WorkflowFailedError).cause as { details?: unknown[] }).details;
  expect(details?.[0]).toMatchObject({ backupId, status: 'could-not-verify' });
  expect(await readFile(recordFile(backupId), 'utf8')).toBe(recordAfterSecond);
  expect(await standing(backupId)).toEqual(before);

  await pg.start();
  expect(await fingerprint(config(), db)).toEqual(rows);
  recordDrill({
    drill: '8. verify: PostgreSQL restart',
    fault: `private PostgreSQL stopped while pg_restore ran (seen in pg_stat_activity), started again before round 2; then stopped while verify.before-compare held the comparison's sessions`,
    dataCheck: `verification.json byte-identical across no-verdict rounds; status verified, latest-verified = it, good set [it]; source ${rows.users!.split(':')[0]} users unchanged`,
    outcome: `restart: pg_restore failed Unavailable (not a verdict), round 2 passed after a durable timer; outage: "could not verify … 2 test restores 1.0 s apart", nothing recorded`,
  });
});
