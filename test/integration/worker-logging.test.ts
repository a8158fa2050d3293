/**
 * The worker's structured log end to end: a real `dbops worker` process (stdout a pipe, as in a
 * pod) runs a real backup on the dev stack; its output must be JSON lines, and the lines its
 * activities and workflows write must name the workflow, the run, and for activities the activity
 * type and attempt, as top-level fields.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startBackup } from '../../src/client/backup';
import { connectClient } from '../../src/client/connection';
import { killAllWorkerProcesses, startWorkerProcess, type WorkerProcess } from '../drills/kit/worker-process';
import { testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { createPopulatedDatabase, dropDatabase } from './backup-helpers';

const suffix = uniqueSuffix();
const db = `t_worker_log_${suffix}`;
const queue = `test-worker-log-${suffix}`;
let dir: string;
let worker: WorkerProcess;
let connection: Connection;
let client: Client;
const config = () => testConfig({ DBOPS_TASK_QUEUE: queue, DBOPS_BACKUP_DIR: dir, DBOPS_DATABASES: db });

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 't_worker_log_'));
  await createPopulatedDatabase(config(), db, 2_000);
  worker = await startWorkerProcess({
    DBOPS_TASK_QUEUE: queue,
    DBOPS_TEMPORAL_NAMESPACE: testRun().namespace,
    DBOPS_BACKUP_DIR: dir,
    DBOPS_DATABASES: db,
    // Debug: the SDK's own per-workflow and per-activity lines come too, so every kind is checked.
    DBOPS_LOG_LEVEL: 'debug',
  });
  ({ client, connection } = await connectClient(config()));
}, 150_000);

afterAll(async () => {
  await connection?.close();
  await killAllWorkerProcesses();
  await dropDatabase(config(), db);
  await rm(dir, { recursive: true, force: true });
});

it("a real worker's activity and workflow lines are JSON with workflowId, runId, activityType and attempt", async () => {
  const handle = await startBackup(client, config(), { database: db });
  expect((await handle.result()).outcome).toBe('succeeded');
  const { runId } = await handle.describe();
  // The retention activity logs through Context.current().log; the SDK logs the workflow's end.
  await worker.waitForLog(/"msg":"backup retention applied"/, 30_000);
  await worker.waitForLog(/"msg":"Workflow completed"/, 30_000);

  const lines = worker
    .log()
    .split('\n')
    .filter((l) => l.trim() !== '');
  const notJson = lines.filter((l) => {
    try {
      return typeof JSON.parse(l) !== 'object';
    } catch {
      return true;
    }
  });
  expect(notJson).toEqual([]);
  const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const r of records) {
    expect(r.level).toMatch(/^(trace|debug|info|warn|error)$/);
    expect(r.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(typeof r.msg).toBe('string');
  }

  const retention = records.find((r) => r.msg === 'backup retention applied');
  expect(retention).toMatchObject({
    level: 'info',
    sdkComponent: 'activity',
    workflowId: handle.workflowId,
    runId,
    workflowType: 'backupWorkflow',
    activityType: 'pruneBackups',
    attempt: 1,
    namespace: testRun().namespace,
    taskQueue: queue,
    database: db,
  });
  expect(retention).not.toHaveProperty('taskToken');

  const completed = records.find((r) => r.msg === 'Workflow completed' && r.workflowId === handle.workflowId);
  expect(completed).toMatchObject({ runId, workflowType: 'backupWorkflow', namespace: testRun().namespace });

  // Every line about this run names the workflow and the run; every activity line its type and attempt.
  const ofRun = records.filter((r) => r.workflowId === handle.workflowId);
  const activityLines = ofRun.filter((r) => r.activityType !== undefined);
  expect(activityLines.length).toBeGreaterThanOrEqual(3);
  for (const r of ofRun) expect(r.runId).toBe(runId);
  // Every line of the run has an attempt: the activity's, or the run's (workflows/log-attributes.ts).
  for (const r of ofRun) expect(r.attempt).toEqual(expect.any(Number));
  expect(completed).toMatchObject({ attempt: 1 });
  // The backup ran the dump activity on the dump queue too: its lines carry the same context.
  expect(activityLines.map((r) => r.taskQueue)).toContain(`${queue}-dumps`);
}, 120_000);
