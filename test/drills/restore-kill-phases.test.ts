/**
 * Drill 5: a restore whose worker is SIGKILLed in each phase (during pg_restore, during the
 * verification, between blocking connections and the rename, right after the rename). Whatever
 * dies, the target accepts connections again and holds either the old or the new data, the
 * workflow reports what the database shows, and no shadow is left. Three restores of one backup
 * run side by side, each on its own task queue and target:
 * A. killed during pg_restore, then during verify; a plain worker finishes it;
 * B. killed with the target blocked, then the workflow terminated: `dbops db cleanup` reopens it;
 * C. killed with the target blocked, killed again right after the rename, cancelled meanwhile;
 *    a plain worker finishes it and the report says restored, as the database shows.
 */
import { readdirSync } from 'node:fs';
import os from 'node:os';
import type { Client } from '@temporalio/client';
import { beforeAll, expect, it } from 'vitest';
import type { RestoreResult } from '../../common/restore';
import { restoreStatusQuery } from '../../workflows/restore-messages';
import { databasesLike, fingerprint, waitFor } from '../integration/restore-fixtures';
import { waitForTool } from './kit/process-group';
import { recordDrill, stepLogger } from './kit/report';
import { cleanup, databaseState, restoreDrill, startApprovedRestore, userRows } from './kit/restore';
import { startWorkerProcess, type WorkerProcess } from './kit/worker-process';

const ROWS = 20_000;
const drill = restoreDrill('killph', 'a');
const { db, config, logFile } = drill;
const envOf = (chain: string) => drill.env(chain);
const step = stepLogger('drill 5');
let client: Client;
let backupId: string;
let firstA: Promise<WorkerProcess>[];
let firstCrashing: Record<'b' | 'c', Promise<WorkerProcess>>;
const AFTER_BLOCK = 'restore.cutover.after-block';
const VERIFY = 'verify.before-compare';
/** The backup's data, and the targets' after a change made since (what "old data" means here). */
let backedUp: Record<string, string>;
let changed: Record<string, string>;

async function worker(chain: string, failpoints?: string): Promise<WorkerProcess> {
  const started = Date.now();
  const w = await startWorkerProcess(
    { ...envOf(chain), ...(failpoints ? { DBOPS_FAILPOINTS: failpoints } : {}) },
    { logFile },
  );
  step(`${chain.toUpperCase()}: worker ${failpoints ?? 'plain'} up in ${Date.now() - started} ms`);
  return w;
}
const plainWorker = (chain: string) => worker(chain);
/** A worker that crashes at `point` (SIGKILL of itself), as a pod dying at that instant would. */
const crashingAt = (chain: string, point: string) => worker(chain, `${point}=crash`);

async function diedAt(w: WorkerProcess, point: string): Promise<void> {
  const line = `dbops failpoint ${point}: crash`;
  await waitFor(`the worker to crash at ${point}`, async () => w.log().includes(line), 120_000);
  await w.exited;
}

beforeAll(async () => {
  // All three first workers bundle their workflows while the database is filled and backed up.
  firstA = [crashingAt('a', VERIFY), crashingAt('a', VERIFY)];
  firstCrashing = { b: crashingAt('b', AFTER_BLOCK), c: crashingAt('c', AFTER_BLOCK) };
  ({ client, backupId, backedUp } = await drill.backUp(ROWS, Promise.all(firstA)));
  changed = await drill.changeAfterBackup('b', 'c');
  step(`backup ${backupId} taken`);
}, 120_000);

/**
 * A: killed during pg_restore, then during verify; a plain worker finishes the restore. Two
 * workers poll from the start (both crash at the verification's failpoint): the one running
 * pg_restore is killed, the other takes the retry and dies verifying.
 */
async function chainA(): Promise<string> {
  const first = await Promise.all(firstA);
  const handle = await startApprovedRestore(client, envOf('a').DBOPS_TASK_QUEUE!, {
    backup: backupId,
    target: db,
  });
  const { plan } = await handle.query(restoreStatusQuery);
  const { shadowDatabase: shadow, preRestoreDatabase: kept } = plan!;
  const { worker: restoring } = await waitForTool(first, 'pg_restore', { stop: true, timeoutMs: 90_000 });
  expect((await databaseState(config, shadow)).mark).toMatchObject({
    dbops: 'restore',
    workflowId: handle.workflowId,
  });
  restoring.kill();
  await restoring.exited;
  expect(await fingerprint(config, db)).toEqual(changed);
  step('A: killed during pg_restore');

  // The other worker takes the retry, restores the shadow again, then dies counting it.
  await diedAt(
    first.find((w) => w !== restoring)!,
    VERIFY,
  );
  expect(await userRows(config, shadow)).toBe(ROWS);
  expect(await fingerprint(config, db)).toEqual(changed);
  expect((await databaseState(config, db)).connectable).toBe(true);
  step('A: killed during verify');

  await plainWorker('a');
  const result: RestoreResult = await handle.result();
  expect(result).toMatchObject({ outcome: 'restored', preRestoreDatabase: kept });
  expect(await fingerprint(config, db)).toEqual(backedUp);
  expect(await fingerprint(config, kept)).toEqual(changed);
  expect((await databaseState(config, db)).connectable).toBe(true);
  // The killed attempts' scratch folders (the decompressed archive) went with the retries.
  expect(readdirSync(os.tmpdir()).filter((e) => e.startsWith(`dbops-restore-${shadow}`))).toEqual([]);
  const rows = await cleanup(envOf('a'), db);
  expect(rows.get(kept)).toMatchObject({ action: 'keep' });
  expect(await databasesLike(config, `${db}__`)).toEqual([kept]);
  step('A: restored');
  return `A restored (${ROWS} users = backup)`;
}

/** B: killed with the target blocked, the workflow terminated; `dbops db cleanup` lets connections in. */
async function chainB(): Promise<string> {
  const target = `${db}_b`;
  const w = await firstCrashing.b;
  const handle = await startApprovedRestore(client, envOf('b').DBOPS_TASK_QUEUE!, {
    backup: backupId,
    target,
  });
  const { plan } = await handle.query(restoreStatusQuery);
  await diedAt(w, AFTER_BLOCK);
  expect(await databaseState(config, target)).toMatchObject({
    connectable: false,
    mark: { dbops: 'blocked', workflowId: handle.workflowId },
  });
  await handle.terminate('drill 5: the workflow is gone with the target blocked');
  step('B: killed with the target blocked; workflow terminated');
  const rows = await cleanup(envOf('b'), target);
  expect(rows.get(target)).toMatchObject({ step: 'blocked connections', action: 'allow connections' });
  expect(rows.get(plan!.shadowDatabase)).toMatchObject({
    action: 'drop',
    result: expect.stringMatching(/^done: .*terminated/),
  });
  expect(await databaseState(config, target)).toMatchObject({ connectable: true, mark: undefined });
  expect(await fingerprint(config, target)).toEqual(changed);
  expect(await databasesLike(config, `${target}__`)).toEqual([]);
  step('B: db cleanup reopened the target');
  return `B terminated while blocked: db cleanup reopened it, old data`;
}

/** C: killed with the target blocked, then right after the rename, and cancelled meanwhile. */
async function chainC(): Promise<string> {
  const target = `${db}_c`;
  const w1 = await firstCrashing.c;
  const handle = await startApprovedRestore(client, envOf('c').DBOPS_TASK_QUEUE!, {
    backup: backupId,
    target,
  });
  const { plan } = await handle.query(restoreStatusQuery);
  const kept = plan!.preRestoreDatabase;
  await diedAt(w1, AFTER_BLOCK);
  expect((await databaseState(config, target)).connectable).toBe(false);
  step('C: killed with the target blocked');

  // The retry lets connections in again (its own workflow's block), swaps, and dies.
  const w2 = await crashingAt('c', 'restore.cutover.after-swap');
  const up = Date.now();
  const reopenedMs = await waitFor('the target to accept connections again', async () =>
    (await databaseState(config, target)).connectable ? Date.now() - up : undefined,
  );
  await diedAt(w2, 'restore.cutover.after-swap');
  expect(await databaseState(config, target)).toMatchObject({
    connectable: true,
    mark: { dbops: 'swapped_in', from: plan!.shadowDatabase, workflowId: handle.workflowId },
  });
  expect(await fingerprint(config, target)).toEqual(backedUp);
  step(`C: killed after the swap (target reopened ${reopenedMs} ms after the worker was up); cancelling`);

  // A cancel after the commit must not report "unchanged": the database says restored.
  await handle.cancel();
  await plainWorker('c');
  const result: RestoreResult = await handle.result();
  expect(result).toMatchObject({ outcome: 'restored', preRestoreDatabase: kept });
  expect(await fingerprint(config, target)).toEqual(backedUp);
  expect(await fingerprint(config, kept)).toEqual(changed);
  expect(await databasesLike(config, `${target}__`)).toEqual([kept]);
  step(`C: reported ${result.outcome}${result.note ? ` (${result.note})` : ''}`);
  return `C cancelled after the swap: reported restored = backup data; reopened ${reopenedMs} ms after a worker was up`;
}

it('a restore killed in any phase: target connectable, old or new data, the report matches, no shadow', async () => {
  const outcomes = await Promise.all([chainA(), chainB(), chainC()]);
  expect(await databasesLike(config, `${db}`)).toEqual([
    db,
    ...(await databasesLike(config, `${db}__pre_restore_`)),
    `${db}_b`,
    `${db}_c`,
    ...(await databasesLike(config, `${db}_c__pre_restore_`)),
  ]);
  recordDrill({
    drill: '5. restore killed per phase',
    fault:
      'SIGKILL of the worker during pg_restore, verify, after blocking connections, after the rename; terminate; cancel',
    dataCheck: `users rows and checksums of 4 tables: old (${ROWS / 2} users) or backup (${ROWS}); kept copy = old; shadows left`,
    outcome: `${outcomes.join('; ')}; 0 shadows`,
  });
}, 240_000);
