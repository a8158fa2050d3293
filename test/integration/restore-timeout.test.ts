import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RestoreResult } from '../../common/restore';
import { buildActivities } from '../../src/worker/activities';
import { resolveSource } from '../../src/worker/create';
import type { restoreWorkflow } from '../../workflows/restore';
import { restoreStatusQuery } from '../../workflows/restore-messages';
import { testConfig, uniqueSuffix } from '../helpers/stack';
import { createTimeSkippingEnv } from '../helpers/time-skipping';
import { startTestWorker } from '../helpers/worker';
import { stageHistory } from '../replay/record';
import { databasesLike, dropDatabasesLike, fingerprint, populate, takeBackup } from './restore-fixtures';

const suffix = uniqueSuffix();
const db = `t_restoreto_${suffix}`;
const backupDir = path.join(os.tmpdir(), `t_restoreto_${suffix}`);
const config = testConfig({
  DBOPS_TASK_QUEUE: `test-restoreto-${suffix}`,
  DBOPS_BACKUP_DIR: backupDir,
  DBOPS_DATABASES: db,
});
let env: TestWorkflowEnvironment;
let backupId: string;

beforeAll(async () => {
  await populate(config, db, 2000);
  const tw = await startTestWorker(config);
  try {
    backupId = (await takeBackup(tw.client, config, db)).backupId;
  } finally {
    await tw.stop();
  }
  env = await createTimeSkippingEnv();
}, 120_000);

afterAll(async () => {
  await env?.teardown();
  await dropDatabasesLike(config, db);
  await rm(backupDir, { recursive: true, force: true });
});

it('an unanswered approval times out after 24 h (time-skipping): cancelled, nothing changed', async () => {
  const before = await fingerprint(config, db);
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: config.temporal.taskQueue,
    workflowsPath: resolveSource(path.join(__dirname, '..', '..', 'workflows', 'index')),
    activities: buildActivities(config),
  });
  const result = await worker.runUntil(async () => {
    const handle = await env.client.workflow.start<typeof restoreWorkflow>('restoreWorkflow', {
      taskQueue: config.temporal.taskQueue,
      workflowId: `restore-timeout-${suffix}`,
      args: [
        {
          backup: backupId,
          requestedBy: 'alice',
          approvalTimeoutMs: 24 * 3600_000,
          fourEyes: false,
          keepDays: 7,
          jobs: 2,
          maximumAttempts: 1,
        },
      ],
    });
    const r: RestoreResult = await handle.result();
    const status = await handle.query(restoreStatusQuery);
    // This run is on the time-skipping server: `npm run histories:record` takes its history from here.
    await stageHistory(handle);
    return { r, status };
  });
  expect(result.r.outcome).toBe('timed-out');
  expect(result.r.approval).toBeNull();
  expect(result.status.phase).toBe('timed-out');
  expect(Date.parse(result.status.approvalDeadline!) - Date.parse(result.status.waitingSince!)).toBe(
    24 * 3600_000,
  );
  expect(await fingerprint(config, db)).toEqual(before);
  expect(await databasesLike(config, db)).toEqual([db]);
});
