/**
 * Drill 15: `dbops db cleanup` never drops a database dbops did not create. User databases whose
 * names merely look like a shadow, a kept copy or a verification scratch survive with their rows;
 * the leftovers dbops' own workflows left (a verification and a restore terminated mid-way, their
 * worker gone) carry dbops' mark naming their workflow and are dropped.
 */
import type { Client } from '@temporalio/client';
import { beforeAll, expect, it } from 'vitest';
import { restoreStatusQuery } from '../../workflows/restore-messages';
import type { verifyBackupWorkflow } from '../../workflows/verify';
import { databasesLike, fingerprint, populate, sql, waitFor } from '../integration/restore-fixtures';
import { recordDrill } from './kit/report';
import { cleanup, databaseState, restoreDrill, sessionsOn, startApprovedRestore } from './kit/restore';
import { startWorkerProcess, type WorkerProcess } from './kit/worker-process';

const drill = restoreDrill('cleanmk');
const { db, config, logFile } = drill;
const env = drill.env();
/** The user's own databases, named like dbops' leftovers, with the comments a user might leave. */
const lookAlikes: Record<string, string | null> = {
  [`${db}__restore_20200101000000`]: null,
  [`${db}__pre_restore_20200101000000`]: 'copy kept by hand before the migration',
  [`${db}__verify_20200101000000`]: JSON.stringify({ owner: 'analytics', keep: true }),
};
const PAUSE = 'verify.before-compare';
const LOOKALIKE_ROWS = 2_000;
let client: Client;
let worker: WorkerProcess;
let backupId: string;

beforeAll(async () => {
  // Every test restore stalls before counting, so both workflows are caught with their database made.
  const starting = startWorkerProcess({ ...env, DBOPS_FAILPOINTS: `${PAUSE}=pause:120000` }, { logFile });
  for (const [name, comment] of Object.entries(lookAlikes)) {
    await populate(config, name, LOOKALIKE_ROWS);
    if (comment !== null)
      await sql(config, undefined, `COMMENT ON DATABASE ${name} IS '${comment.replace(/'/g, "''")}'`);
  }
  ({ client, backupId } = await drill.backUp(5_000, starting));
  worker = await starting;
}, 120_000);

it('db cleanup drops only what dbops marked: look-alike user databases keep their rows', async () => {
  const before = new Map<string, Record<string, string>>();
  for (const name of Object.keys(lookAlikes)) before.set(name, await fingerprint(config, name));
  const target = await fingerprint(config, db);

  // dbops' own leftovers: a verification and a restore, terminated while their test restore stalls.
  const verify = await client.workflow.start<typeof verifyBackupWorkflow>('verifyBackupWorkflow', {
    taskQueue: env.DBOPS_TASK_QUEUE!,
    workflowId: `drill-verify-${db}`,
    args: [{ backupId, rounds: 1 }],
  });
  const restore = await startApprovedRestore(client, env.DBOPS_TASK_QUEUE!, { backup: backupId, target: db });
  const shadow = (await restore.query(restoreStatusQuery)).plan!.shadowDatabase;
  await waitFor(
    'both test restores to stall before counting',
    async () => worker.log().split(`dbops failpoint ${PAUSE}: pause`).length === 3,
    90_000,
  );
  await verify.terminate('drill 15: abandoned verification');
  await restore.terminate('drill 15: abandoned restore');
  worker.kill();
  await worker.exited;
  const scratch = (await databasesLike(config, `${db}__verify_`)).find((n) => !(n in lookAlikes))!;
  expect((await databaseState(config, scratch)).mark).toMatchObject({
    dbops: 'verify',
    workflowId: verify.workflowId,
  });
  expect((await databaseState(config, shadow)).mark).toMatchObject({
    dbops: 'restore',
    workflowId: restore.workflowId,
  });
  await waitFor(
    'the killed worker’s sessions to end',
    async () => (await sessionsOn(config, scratch)) + (await sessionsOn(config, shadow)) === 0,
  );

  const rows = await cleanup(env, db);
  for (const name of Object.keys(lookAlikes)) {
    expect(rows.get(name)).toMatchObject({
      action: 'keep',
      result: expect.stringMatching(/^not made by dbops/),
    });
    expect(await fingerprint(config, name)).toEqual(before.get(name));
    expect((await databaseState(config, name)).comment).toBe(lookAlikes[name]);
  }
  for (const [name, id] of [
    [scratch, verify.workflowId],
    [shadow, restore.workflowId],
  ] as const) {
    expect(rows.get(name)).toMatchObject({
      action: 'drop',
      result: `done: workflow ${id} is over (terminated)`,
    });
  }
  expect(await databasesLike(config, `${db}__`)).toEqual(Object.keys(lookAlikes).sort());
  expect(await fingerprint(config, db)).toEqual(target);

  recordDrill({
    drill: '15. db cleanup marks',
    fault:
      'user databases named like <db>__restore_, __pre_restore_, __verify_ + a 2020 stamp; a verify and a restore terminated mid-way, worker killed',
    dataCheck: `checksums of the 3 look-alikes (${LOOKALIKE_ROWS} users each) and of <db> before = after; databases left`,
    outcome: `3 look-alikes kept ("not made by dbops"), rows intact; dbops' scratch and shadow (marked, workflow terminated) dropped`,
  });
}, 150_000);
