/**
 * The dev stack's background dbops worker (started by the quickstart): `dbops worker`, detached,
 * from the build when there is one (the quickstart builds first), else from source through tsx,
 * with its PID file, log and health endpoint beside the servers'. `stack down`
 * stops it before the servers, so it never sits retrying a stopped Temporal server; `stack status`
 * lists it.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { HOST, httpGet, waitUntil } from './health';
import { repoRoot, type StackPaths } from './paths';
import { isAlive, isOurProcess, readPid, removePid, spawnDetached, terminate } from './procs';
import { PORTS } from './servers';

export const WORKER = 'worker';

export interface WorkerPaths {
  /** The worker's PID, then its HTTP port, one a line. */
  pidFile: string;
  logFile: string;
}

export function workerPaths(p: StackPaths): WorkerPaths {
  return { pidFile: path.join(p.run, `${WORKER}.pid`), logFile: path.join(p.logs, `${WORKER}.log`) };
}

/** node's arguments: the built CLI (what production runs), else the source through tsx. */
function workerCommand(): { args: string[]; built: boolean } {
  const root = repoRoot();
  if (existsSync(path.join(root, 'dist', 'src', 'cli', 'main.js'))) {
    return { args: [path.join(root, 'bin', 'dbops.js'), WORKER], built: true };
  }
  return { args: ['--import', 'tsx', path.join(root, 'src', 'cli', 'main.ts'), WORKER], built: false };
}

/** What the worker's command line contains (either form): guards against a recycled PID. */
const signature = () => [repoRoot(), WORKER];

function recordedPort(w: WorkerPaths): number {
  let port = Number.NaN;
  try {
    port = Number.parseInt(readFileSync(w.pidFile, 'utf8').split('\n')[1] ?? '', 10);
  } catch {
    /* no file */
  }
  return Number.isInteger(port) && port > 0 ? port : PORTS.worker;
}

const readyUrl = (port: number) => `http://${HOST}:${port}/readyz`;

export type WorkerState = 'running' | 'unhealthy' | 'stopped';

export interface WorkerStatus {
  state: WorkerState;
  pid: number | null;
  address: string;
  log: string;
  note?: string;
}

function ourWorkerPid(w: WorkerPaths): number | undefined {
  const pid = readPid(w.pidFile);
  if (pid !== undefined && isOurProcess(pid, signature())) return pid;
  if (pid !== undefined) removePid(w.pidFile);
  return undefined;
}

/** /readyz: 200 when the worker runs and Temporal answers. */
async function ready(url: string): Promise<{ ok: boolean; reason: string }> {
  const answer = await httpGet(url);
  if (!answer) return { ok: false, reason: `nothing answers on ${url}` };
  let reason = answer.body.trim();
  try {
    const parsed = (JSON.parse(answer.body) as { reason?: unknown }).reason;
    if (typeof parsed === 'string') reason = parsed;
  } catch {
    /* not JSON: keep the body */
  }
  return { ok: answer.status === 200, reason };
}

export async function workerStatus(p: StackPaths): Promise<WorkerStatus> {
  const w = workerPaths(p);
  const pid = ourWorkerPid(w);
  const url = readyUrl(recordedPort(w));
  const base = { pid: pid ?? null, address: url, log: w.logFile };
  if (pid === undefined) return { ...base, state: 'stopped' };
  const r = await ready(url);
  return r.ok ? { ...base, state: 'running' } : { ...base, state: 'unhealthy', note: r.reason };
}

/**
 * Starts the worker with this process's environment (the caller exports the stack's settings and
 * any overrides; DBOPS_HTTP_PORT defaults to the stack's worker port) and waits until it is ready.
 * Idempotent: a running worker is left alone.
 */
export async function startWorker(p: StackPaths, timeoutMs = 90_000): Promise<string> {
  const w = workerPaths(p);
  const running = ourWorkerPid(w);
  if (running !== undefined) return `already running (pid ${running})`;
  const port = Number.parseInt(process.env.DBOPS_HTTP_PORT ?? '', 10) || PORTS.worker;
  const { args, built } = workerCommand();
  const pid = spawnDetached(process.execPath, args, {
    logFile: w.logFile,
    cwd: repoRoot(),
    env: { ...process.env, DBOPS_HTTP_PORT: String(port) },
  });
  mkdirSync(path.dirname(w.pidFile), { recursive: true });
  writeFileSync(w.pidFile, `${pid}\n${port}\n`);
  const t0 = Date.now();
  let last = '';
  const waited = await waitUntil(
    async () => {
      const r = await ready(readyUrl(port));
      last = r.reason;
      return r.ok;
    },
    { timeoutMs, intervalMs: 500, abort: () => (isAlive(pid) ? undefined : 'the worker exited') },
  );
  if (!waited.ok) {
    await stopWorker(p);
    throw new Error(`worker failed to start: ${waited.reason}${last ? ` (${last})` : ''}; read ${w.logFile}`);
  }
  const from = built ? 'the build' : 'source (no build: npm run build for the production form)';
  return `started in ${((Date.now() - t0) / 1000).toFixed(1)}s (pid ${pid}, from ${from})`;
}

/**
 * SIGTERM drains the worker (in-flight activities get its 30 s shutdown grace; Temporal retries
 * whatever they did not finish on the next worker); SIGKILL after 40 s.
 */
export async function stopWorker(p: StackPaths): Promise<string> {
  const w = workerPaths(p);
  const pid = ourWorkerPid(w);
  if (pid === undefined) {
    removePid(w.pidFile);
    return 'not running';
  }
  const killed = await terminate(pid, 40_000);
  removePid(w.pidFile);
  return killed ? 'killed (no exit 40 s after SIGTERM)' : 'stopped';
}
