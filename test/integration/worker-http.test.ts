import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { REPO_ROOT } from '../../src/config';
import { freeLoopbackPort } from '../../src/worker/metrics';
import { stackVars, testRun, uniqueSuffix } from '../helpers/stack';

/**
 * The worker as Kubernetes runs it: the built CLI (`node bin/dbops.js worker`) in its own process,
 * probed over HTTP, then stopped with SIGTERM.
 */
const taskQueue = `test-deploy-${uniqueSuffix()}`;
let buildDir: string;
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
  const env: Record<string, string> = {
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
  };
  child = spawn(process.execPath, [path.join(buildDir, 'bin/dbops.js'), 'worker'], { env, stdio: 'pipe' });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}, 400_000);

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited;
  }
  if (buildDir) rmSync(buildDir, { recursive: true, force: true });
});

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

    const missing = await fetch(url('/nope'));
    expect(missing.status).toBe(404);
  }, 60_000);

  it('drains on SIGTERM and exits 0', async () => {
    const started = Date.now();
    child.kill('SIGTERM');
    const result = await exited;
    expect(result, output).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(35_000);
    expect(output).toContain('dbops worker stopped');
  }, 60_000);
});
