import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import type { BackupManifest } from '../../common/backup';
import { failureTypeOf } from '../../common/failures';
import { REPO_ROOT } from '../../src/config';
import { freeLoopbackPort } from '../../src/worker/runtime';
import { sampleValue, samples } from '../helpers/prometheus';
import { stackVars, testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import type { restoreWorkflow } from '../../workflows/restore';
import type { verifyBackupWorkflow } from '../../workflows/verify';
import { dropDatabasesLike, populate, takeBackup } from './restore-fixtures';

/**
 * The worker as Kubernetes runs it: the built CLI (`node bin/dbops.js worker`) in its own process,
 * probed over HTTP, then stopped with SIGTERM. Its /metrics tells how real operations ended (a
 * backup, a failed backup, a verification), and after a restart still tells the newest backup.
 */
const suffix = uniqueSuffix();
const taskQueue = `test-deploy-${suffix}`;
/** A database to back up and verify, and one that does not exist. */
const db = `t_metrics_${suffix}`;
const missingDb = `t_nosuch_${suffix}`;
const config = testConfig({ DBOPS_TASK_QUEUE: taskQueue });
let buildDir: string;
let env: Record<string, string>;
let child: ChildProcess;
let port: number;
let output = '';
let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

const url = (p: string) => `http://127.0.0.1:${port}${p}`;

async function waitFor(pathname: string, status: number, timeoutMs: number): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`worker exited ${child.exitCode}:\n${output}`);
    try {
      const res = await fetch(url(pathname), { signal: AbortSignal.timeout(3_000) });
      if (res.status === status) return res;
      last = `${res.status} ${await res.text()}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${pathname} did not answer ${status} within ${timeoutMs} ms (last: ${last})\n${output}`);
}

beforeAll(async () => {
  // The production layout: compiled JS under dist/, started through bin/dbops.js.
  buildDir = mkdtempSync(path.join(os.tmpdir(), 'dbops-worker-http-'));
  try {
    await promisify(execFile)(
      process.execPath,
      [
        require.resolve('typescript/bin/tsc'),
        '-p',
        'tsconfig.build.json',
        '--outDir',
        path.join(buildDir, 'dist'),
      ],
      { cwd: REPO_ROOT },
    );
  } catch (err) {
    // Type errors elsewhere still emit JavaScript; this test needs the emitted CLI, the typecheck is CI's.
    if (!existsSync(path.join(buildDir, 'dist/src/cli/main.js'))) throw err;
  }
  cpSync(path.join(REPO_ROOT, 'bin'), path.join(buildDir, 'bin'), { recursive: true });
  cpSync(path.join(REPO_ROOT, 'package.json'), path.join(buildDir, 'package.json'));
  symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(buildDir, 'node_modules'), 'dir');

  port = await freeLoopbackPort();
  const vars = stackVars();
  env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? os.tmpdir(),
    DBOPS_STACK_HOME: vars.DBOPS_STACK_HOME!,
    PGHOST: vars.PGHOST!,
    PGPORT: vars.PGPORT!,
    PGUSER: vars.PGUSER!,
    PGDATABASE: vars.PGDATABASE!,
    DBOPS_PG_BIN_DIR: vars.DBOPS_PG_BIN_DIR!,
    DBOPS_TEMPORAL_ADDRESS: vars.DBOPS_TEMPORAL_ADDRESS!,
    DBOPS_TEMPORAL_NAMESPACE: testRun().namespace,
    DBOPS_MILVUS_ADDRESS: vars.DBOPS_MILVUS_ADDRESS!,
    DBOPS_BACKUP_DIR: path.join(buildDir, 'backups'),
    DBOPS_TASK_QUEUE: taskQueue,
    DBOPS_HTTP_PORT: String(port),
    // The backup store's listing feeds the backup gauges for these (src/worker/backup-age.ts).
    DBOPS_DATABASES: db,
  };
  startWorker(env);
  await populate(config, db, 2_000);
}, 400_000);

/** Starts `dbops worker` from the build (output collected in `output`, its exit in `exited`). */
function startWorker(workerEnv: Record<string, string>): void {
  child = spawn(process.execPath, [path.join(buildDir, 'bin/dbops.js'), 'worker'], {
    env: workerEnv,
    stdio: 'pipe',
  });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited;
  }
  await dropDatabasesLike(config, db);
  if (buildDir) rmSync(buildDir, { recursive: true, force: true });
});

/** Runs `fn` with a Temporal client of the run's namespace. */
async function withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address: stackVars().DBOPS_TEMPORAL_ADDRESS });
  try {
    return await fn(new Client({ connection, namespace: testRun().namespace }));
  } finally {
    await connection.close();
  }
}

/** Scrapes /metrics until `done` holds for its text (a sink call lands a moment after the result). */
async function scrapeUntil(done: (text: string) => boolean, timeoutMs = 10_000): Promise<string> {
  let text = await (await fetch(url('/metrics'))).text();
  for (const until = Date.now() + timeoutMs; !done(text) && Date.now() < until;) {
    await new Promise((r) => setTimeout(r, 200));
    text = await (await fetch(url('/metrics'))).text();
  }
  return text;
}

const runs = (text: string, labels: Record<string, string>) =>
  sampleValue(text, 'dbops_operation_runs_total', labels);
const nowSeconds = () => Date.now() / 1000;

describe('worker HTTP endpoints and graceful shutdown', () => {
  it('answers liveness, then readiness once the worker polls', async () => {
    const live = await waitFor('/healthz', 200, 60_000);
    expect(await live.json()).toMatchObject({ status: 'ok' });
    const ready = await waitFor('/readyz', 200, 90_000);
    expect(await ready.json()).toEqual({
      status: 'ready',
      reason: 'worker RUNNING, Temporal server answers',
    });
  }, 150_000);

  it('serves Temporal SDK metrics and dbops metrics on one /metrics endpoint', async () => {
    // A workflow round trip through this worker, so the SDK has task metrics to report.
    const connection = await Connection.connect({ address: stackVars().DBOPS_TEMPORAL_ADDRESS });
    try {
      const client = new Client({ connection, namespace: testRun().namespace });
      const result = await client.workflow.execute('pingWorkflow', {
        taskQueue,
        workflowId: `${taskQueue}-ping`,
        args: ['metrics'],
        workflowExecutionTimeout: '30s',
      });
      expect(result).toMatchObject({ echo: 'metrics' });
    } finally {
      await connection.close();
    }

    // The SDK counts a completed workflow task after the server has it, so the client may see the
    // result a moment before the counter moves: scrape until it does (the full suite caught one).
    const completed = /^temporal_workflow_completed\{.*workflow_type="pingWorkflow".*\} [1-9]/m;
    let res = await fetch(url('/metrics'));
    let text = await res.text();
    for (const until = Date.now() + 10_000; !completed.test(text) && Date.now() < until;) {
      await new Promise((r) => setTimeout(r, 200));
      res = await fetch(url('/metrics'));
      text = await res.text();
    }
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(text).not.toContain('Temporal SDK metrics unavailable');
    expect(text).toMatch(/^temporal_worker_task_slots_available\{.*task_queue="test-deploy-/m);
    expect(text).toMatch(completed);
    for (const name of [
      'dbops_backup_last_success_timestamp_seconds',
      'dbops_backup_size_bytes',
      'dbops_backup_duration_seconds',
      'dbops_backup_newest_verified_age_seconds',
    ]) {
      expect(text).toContain(`# TYPE ${name} gauge`);
    }
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    // pingWorkflow is no operation: the operation series have no sample yet.
    expect(text).toContain('# TYPE dbops_operation_runs_total counter');
    expect(samples(text, 'dbops_operation_runs_total')).toEqual([]);

    const missing = await fetch(url('/nope'));
    expect(missing.status).toBe(404);
  }, 60_000);

  it('tells how operations ended: a backup, a failed backup, a verification', async () => {
    const started = nowSeconds();
    const { backup, verified } = await withClient(async (client) => {
      const backup = await takeBackup(client, config, db);
      const failed = await takeBackup(client, config, missingDb).catch((e: unknown) => e);
      expect(failureTypeOf(failed)).toBe('NotFound');
      const verified = await client.workflow.execute<typeof verifyBackupWorkflow>('verifyBackupWorkflow', {
        taskQueue,
        workflowId: `${taskQueue}-verify`,
        args: [{ backupId: backup.backupId, maximumAttempts: 1 }],
      });
      return { backup, verified };
    });
    expect(verified.status).toBe('passed');

    const verify = { operation: 'verify', database: db, outcome: 'succeeded', reason: 'none' };
    const text = await scrapeUntil((t) => runs(t, verify) === 1);
    expect(runs(text, { operation: 'backup', database: db, outcome: 'succeeded', reason: 'none' })).toBe(1);
    expect(
      runs(text, { operation: 'backup', database: missingDb, outcome: 'failed', reason: 'NotFound' }),
    ).toBe(1);
    expect(runs(text, verify)).toBe(1);
    expect(samples(text, 'dbops_operation_runs_total')).toHaveLength(3);

    for (const operation of ['backup', 'verify']) {
      const at = sampleValue(text, 'dbops_operation_last_success_timestamp_seconds', {
        operation,
        database: db,
      });
      expect(at).toBeGreaterThanOrEqual(Math.floor(started));
      expect(at).toBeLessThanOrEqual(nowSeconds());
    }
    const hist = (suffix: string, labels: Record<string, string>) =>
      sampleValue(text, `dbops_operation_duration_seconds_${suffix}`, labels);
    expect(hist('count', { operation: 'backup', outcome: 'succeeded' })).toBe(1);
    expect(hist('count', { operation: 'backup', outcome: 'failed' })).toBe(1);
    expect(hist('bucket', { operation: 'verify', outcome: 'succeeded', le: '+Inf' })).toBe(1);
    const backupSeconds = hist('sum', { operation: 'backup', outcome: 'succeeded' })!;
    expect(backupSeconds).toBeGreaterThan(0);
    expect(backupSeconds).toBeLessThan(nowSeconds() - started + 1);

    const gauge = (name: string, database = db) => sampleValue(text, name, { database });
    const finished = gauge('dbops_backup_last_success_timestamp_seconds')!;
    expect(finished).toBeGreaterThanOrEqual(Math.floor(started));
    expect(finished).toBeLessThanOrEqual(nowSeconds());
    expect(gauge('dbops_backup_size_bytes')).toBe(backup.sizeBytes);
    expect(gauge('dbops_backup_duration_seconds')).toBe(backup.durationMs / 1000);
    // Measured from when the verified backup was taken (the second in its id) to the scrape.
    const age = gauge('dbops_backup_newest_verified_age_seconds')!;
    expect(age).toBeGreaterThan(0);
    expect(age).toBeLessThan(nowSeconds() - started + 2);
    for (const name of ['dbops_backup_last_success_timestamp_seconds', 'dbops_backup_size_bytes']) {
      expect(gauge(name, missingDb)).toBeUndefined();
    }
  }, 240_000);

  it('drains on SIGTERM and exits 0', async () => {
    const started = Date.now();
    child.kill('SIGTERM');
    const result = await exited;
    expect(result, output).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(35_000);
    expect(output).toContain('dbops worker stopped');
  }, 60_000);

  it('after a restart, the backup gauges come from the store; the prebundled workflows report too', async () => {
    // This time the worker loads the test run's prebundle (test/global-setup.ts) instead of bundling.
    const bundle = process.env.DBOPS_WORKFLOW_BUNDLE;
    expect(bundle, 'test/global-setup.ts sets DBOPS_WORKFLOW_BUNDLE').toBeDefined();
    output = '';
    startWorker({ ...env, DBOPS_WORKFLOW_BUNDLE: bundle! });
    await waitFor('/readyz', 200, 90_000);

    const dir = path.join(buildDir, 'backups', db);
    const ids = readdirSync(dir).filter((f) => f.startsWith(`${db}_`));
    expect(ids).toHaveLength(1);
    const backupId = ids[0]!;
    const manifest = JSON.parse(
      readFileSync(path.join(dir, backupId, 'manifest.json'), 'utf8'),
    ) as BackupManifest;
    let text = await scrapeUntil((t) => t.includes(`dbops_backup_size_bytes{database="${db}"}`));
    const gauge = (name: string) => sampleValue(text, name, { database: db });
    expect(gauge('dbops_backup_last_success_timestamp_seconds')).toBe(Date.parse(manifest.finishedAt) / 1000);
    expect(gauge('dbops_backup_size_bytes')).toBe(manifest.sizeBytes);
    expect(gauge('dbops_backup_duration_seconds')).toBe(manifest.durationMs / 1000);
    expect(gauge('dbops_backup_newest_verified_age_seconds')).toBeGreaterThan(0);
    // Counters start again with the process.
    expect(samples(text, 'dbops_operation_runs_total')).toEqual([]);

    const plan = await withClient((client) =>
      client.workflow.execute<typeof restoreWorkflow>('restoreWorkflow', {
        taskQueue,
        workflowId: `${taskQueue}-restore-dry-run`,
        args: [{ backup: backupId, target: db, dryRun: true, requestedBy: 'metrics-test', jobs: 1 }],
      }),
    );
    expect(plan.outcome).toBe('dry-run');
    const dryRun = { operation: 'restore', database: db, outcome: 'dry_run', reason: 'none' };
    text = await scrapeUntil((t) => runs(t, dryRun) === 1);
    expect(runs(text, dryRun)).toBe(1);

    child.kill('SIGTERM');
    expect(await exited, output).toEqual({ code: 0, signal: null });
  }, 180_000);
});
