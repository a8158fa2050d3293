import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { restoreWorkflowId } from '../../common/ids';
import type { RestoreResult } from '../../common/restore';
import type { restoreWorkflow } from '../../workflows/restore';
import { restoreApprovalUpdate, restoreStatusQuery } from '../../workflows/restore-messages';
import { stackVars, testConfig, uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import {
  databasesLike,
  dropDatabasesLike,
  fingerprint,
  populate,
  sql,
  takeBackup,
  waitFor,
} from './restore-fixtures';

const suffix = uniqueSuffix();
const db = `t_restorecr_${suffix}`;
const backupDir = path.join(os.tmpdir(), `t_restorecr_${suffix}`);
const queue = `test-restorecr-${suffix}`;
const config = testConfig({ DBOPS_TASK_QUEUE: queue, DBOPS_BACKUP_DIR: backupDir });
let tw: TestWorker;
let backupId: string;
const children: ChildProcess[] = [];
const t0 = Date.now();
const step = (what: string) =>
  console.log(`[crash test +${((Date.now() - t0) / 1000).toFixed(1)} s] ${what}`);

/** A worker in its own process group, like a pod: SIGKILL takes pg_restore down with it. */
async function childWorker(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'worker'], {
    env: {
      ...process.env,
      ...stackVars(),
      DBOPS_TASK_QUEUE: queue,
      DBOPS_TEMPORAL_NAMESPACE: config.temporal.namespace,
      DBOPS_STORAGE: 'local',
      DBOPS_BACKUP_DIR: backupDir,
      DBOPS_WORKFLOW_BUNDLE: 'off',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  children.push(child);
  let log = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('polling task queue')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`worker exited ${code}: ${log.slice(-2000)}`)));
  });
  return child;
}

function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
}

beforeAll(async () => {
  await populate(config, db, 300_000);
  tw = await startTestWorker(config);
  try {
    backupId = (await takeBackup(tw.client, config, db)).backupId;
  } finally {
    await tw.stop();
  }
  tw = undefined as unknown as TestWorker;
}, 180_000);

afterAll(async () => {
  for (const c of children) killGroup(c);
  await dropDatabasesLike(config, db);
  await rm(backupDir, { recursive: true, force: true });
});

it('a worker killed during pg_restore: a new worker finishes the restore; target intact, no shadow left', async () => {
  const { Client, Connection } = await import('@temporalio/client');
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  try {
    await sql(config, db, 'DELETE FROM users WHERE id % 2 = 0');
    const changed = await fingerprint(config, db);
    const first = await childWorker();
    step('first worker up');
    const handle = await client.workflow.start<typeof restoreWorkflow>('restoreWorkflow', {
      taskQueue: queue,
      workflowId: restoreWorkflowId(db, new Date()),
      args: [
        {
          backup: backupId,
          requestedBy: 'alice',
          approvalTimeoutMs: 600_000,
          fourEyes: false,
          keepDays: 7,
          jobs: 2,
          heartbeatTimeoutMs: 5000,
        },
      ],
    });
    const status = await waitFor('awaiting-approval', async () => {
      const s = await handle.query(restoreStatusQuery);
      return s.phase === 'awaiting-approval' ? s : undefined;
    });
    await handle.executeUpdate(restoreApprovalUpdate, {
      args: [{ decision: 'approve', by: 'bob', planHash: status.planHash! }],
    });
    await waitFor('pg_restore running', async () => {
      const rows = await sql<{ n: number }>(
        config,
        undefined,
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE starts_with(datname, $1)',
        [`${db}__restore_`],
      );
      return rows[0]!.n > 0 ? true : undefined;
    });
    step('pg_restore running: killing the worker');
    killGroup(first);
    // The target is untouched while nobody runs the restore.
    expect(await fingerprint(config, db)).toEqual(changed);

    await childWorker();
    step('second worker up');
    const outcome = await handle.result().then(
      (r: RestoreResult) => r,
      (e: unknown) => e as Error,
    );
    step(`workflow ended: ${outcome instanceof Error ? outcome.message : outcome.outcome}`);
    if (outcome instanceof Error) {
      expect(await fingerprint(config, db)).toEqual(changed);
    } else {
      expect(outcome.outcome).toBe('restored');
      const [r] = await sql<{ n: number }>(config, db, 'SELECT count(*)::int AS n FROM users');
      expect(r!.n).toBe(300_000);
      expect(await fingerprint(config, outcome.preRestoreDatabase!)).toEqual(changed);
    }
    expect(await databasesLike(config, `${db}__restore_`)).toEqual([]);
    // The killed attempt's scratch folder (the decompressed archive) went with the retry.
    expect(readdirSync(os.tmpdir()).filter((e) => e.startsWith(`dbops-restore-${db}__restore_`))).toEqual([]);
  } finally {
    await connection.close();
  }
}, 240_000);
