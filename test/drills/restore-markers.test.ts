/**
 * Drill 6: "already done" is believed only from a mark. A rollback after `dbops db cleanup` removed
 * the kept pre-restore copy, and a restore whose shadow vanished before the rename, must fail
 * NotFound with the target unchanged, never report success (on main before the fix, the rollback
 * printed "<target> is back to ..." while nothing changed). Both run end to end: real workflows,
 * the CLI a user types, and the data of the databases.
 */
import type { Client } from '@temporalio/client';
import { beforeAll, expect, it } from 'vitest';
import { failureTypeOf, rootMessage } from '../../common/failures';
import type { RestoreResult } from '../../common/restore';
import { restoreStatusQuery } from '../../workflows/restore-messages';
import { databasesLike, fingerprint, sql, waitFor } from '../integration/restore-fixtures';
import { dbops } from './kit/dbops-cli';
import { recordDrill, stepLogger } from './kit/report';
import { cleanup, databaseState, restoreDrill, startApprovedRestore } from './kit/restore';
import { startWorkerProcess, type WorkerProcess } from './kit/worker-process';

const ROWS = 20_000;
/** Long enough for `dbops db cleanup` and a DROP to run while the cut-over holds the target blocked. */
const PAUSE_MS = 25_000;
const drill = restoreDrill('marks', 'a');
const { db, config, logFile } = drill;
// Worker A keeps a replaced database 0 days (worker policy), so cleanup may drop it at once.
const envA = { ...drill.env('a'), DBOPS_RESTORE_KEEP_DAYS: '0' };
const envB = drill.env('b');
const step = stepLogger('drill 6');
let client: Client;
let backupId: string;
let pausing: Promise<WorkerProcess>;
let backedUp: Record<string, string>;
let changed: Record<string, string>;

beforeAll(async () => {
  const plain = startWorkerProcess(envA, { logFile });
  pausing = startWorkerProcess(
    { ...envB, DBOPS_FAILPOINTS: `restore.cutover.after-block=pause:${PAUSE_MS}` },
    { logFile },
  );
  ({ client, backupId, backedUp } = await drill.backUp(ROWS, plain));
  changed = await drill.changeAfterBackup('b');
  step(`backup ${backupId} taken`);
}, 120_000);

/** Restore (CLI), cleanup drops the expired kept copy (CLI), rollback (CLI) must fail NotFound. */
async function rollbackAfterCleanup(): Promise<string> {
  const env = envA;
  const started = await dbops(env, 'restore', backupId, '--target', db, '--as', 'alice', '--json');
  expect(started.code, started.stderr).toBe(0);
  const { workflowId, status } = JSON.parse(started.stdout) as {
    workflowId: string;
    status: { planHash: string };
  };
  const approved = await dbops(
    env,
    'restore',
    'approve',
    workflowId,
    '--as',
    'bob',
    '--plan-hash',
    status.planHash,
  );
  expect(approved.code, approved.stderr).toBe(0);
  const result = (await client.workflow.getHandle(workflowId).result()) as RestoreResult;
  const kept = result.preRestoreDatabase!;
  expect(result.outcome).toBe('restored');
  expect(await fingerprint(config, db)).toEqual(backedUp);
  expect((await databaseState(config, db)).mark).toMatchObject({ dbops: 'swapped_in', workflowId });
  expect((await databaseState(config, kept)).mark).toMatchObject({
    dbops: 'pre_restore',
    target: db,
    workflowId,
  });
  step(`A: restored ${db}; kept ${kept} for 0 days`);

  const rows = await cleanup(env, db);
  expect(rows.get(kept)).toMatchObject({ action: 'drop', result: expect.stringMatching(/^done/) });
  expect(await databasesLike(config, `${db}__`)).toEqual([]);

  const rollback = await dbops(env, 'restore', 'rollback', workflowId);
  expect(rollback.code).toBe(2);
  expect(rollback.stderr).toContain(`[NotFound] database ${kept} does not exist`);
  expect(rollback.stdout).not.toContain('is back to');
  expect(await fingerprint(config, db)).toEqual(backedUp);
  expect((await databaseState(config, db)).connectable).toBe(true);
  expect(await databasesLike(config, `${db}__`)).toEqual([]);
  step('A: rollback refused NotFound; target unchanged');
  return `rollback after cleanup dropped the kept copy: exit 2 [NotFound], target still the backup's ${ROWS} users`;
}

/** The shadow dropped while the cut-over holds the target blocked: NotFound, target unchanged. */
async function shadowVanished(): Promise<string> {
  const target = `${db}_b`;
  await pausing;
  const handle = await startApprovedRestore(client, envB.DBOPS_TASK_QUEUE!, { backup: backupId, target });
  const { plan } = await handle.query(restoreStatusQuery);
  const shadow = plan!.shadowDatabase;
  await waitFor(
    'the cut-over to block the target',
    async () => (await databaseState(config, target)).mark?.dbops === 'blocked',
    90_000,
  );
  const blockedAt = Date.now();
  // db cleanup while the restore runs: the live cut-over's block and the running workflow's shadow stay.
  const rows = await cleanup(envB, target);
  expect(rows.get(target)).toMatchObject({ step: 'blocked connections', action: '-' });
  expect(rows.get(shadow)).toMatchObject({
    action: 'keep',
    result: `workflow ${handle.workflowId} is running`,
  });
  expect((await databaseState(config, shadow)).exists).toBe(true);
  // The shadow vanishes (an operator's DROP) before the rename.
  await sql(config, undefined, `DROP DATABASE ${shadow} WITH (FORCE)`);
  step(
    `B: cleanup ran and the shadow was dropped ${Date.now() - blockedAt} ms into the ${PAUSE_MS} ms pause`,
  );

  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(failureTypeOf(err)).toBe('NotFound');
  expect(rootMessage(err)).toContain(`database ${shadow} does not exist`);
  expect(await databaseState(config, target)).toMatchObject({ connectable: true, comment: null });
  expect(await fingerprint(config, target)).toEqual(changed);
  expect(await databasesLike(config, `${target}__`)).toEqual([]);
  step('B: restore failed NotFound; target unchanged and connectable');
  return `shadow dropped mid cut-over: [NotFound], target old ${ROWS / 2} users, connectable; cleanup kept the running restore's shadow`;
}

it('a vanished kept copy or shadow is a NotFound failure, never a success', async () => {
  const outcomes = await Promise.all([rollbackAfterCleanup(), shadowVanished()]);
  recordDrill({
    drill: '6. rollback/shadow vanished',
    fault:
      'db cleanup drops the kept copy, then rollback; DROP of the shadow while the cut-over holds the target',
    dataCheck: 'checksums of 4 tables of each target before and after; marks on target and kept copy',
    outcome: outcomes.join('; '),
  });
}, 180_000);
