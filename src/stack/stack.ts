/** Orchestration: the state of each server, starting and stopping them, the stack lock. */
import { closeSync, existsSync, mkdirSync, openSync, readSync, rmSync, statSync, writeSync } from 'node:fs';

import { canPostgresTraverse, isRoot } from './exec';
import { tcpOpen, waitUntil } from './health';
import { pgBinDir } from './install';
import { homeForRead, stackPaths, type ServerName, type StackPaths } from './paths';
import { isAlive, isOurProcess, readPid, removePid, sleep, terminate, writePid } from './procs';
import { SERVERS, type ServerContext, type ServerDef } from './servers';

export type ServerState = 'running' | 'unhealthy' | 'stopped' | 'external';

export interface ServerStatus {
  name: ServerName;
  state: ServerState;
  pid: number | null;
  address: string;
  log: string;
  note?: string;
}

export function makeContext(home: string = homeForRead()): ServerContext {
  const p = stackPaths(home);
  let bin: Promise<string> | undefined;
  return {
    p,
    root: isRoot(),
    pgBin() {
      bin ??= pgBinDir(p);
      bin.catch(() => {
        bin = undefined; // retry next time (e.g. after the install finished)
      });
      return bin;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Lock: one stack command that changes things at a time.

export async function withLock<T>(p: StackPaths, fn: () => Promise<T>): Promise<T> {
  mkdirSync(p.run, { recursive: true, mode: 0o755 });
  const deadline = Date.now() + 30 * 60_000;
  let told = false;
  for (;;) {
    try {
      const fd = openSync(p.lockFile, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = readPid(p.lockFile);
      if (holder === undefined || holder === process.pid || !isAlive(holder)) {
        // Stale (its owner died), or unreadable because its owner is still writing: retry shortly.
        if (holder !== undefined || Date.now() - mtimeMs(p.lockFile) > 2000)
          rmSync(p.lockFile, { force: true });
        await sleep(50);
        continue;
      }
      if (Date.now() > deadline) throw new Error(`another stack command (pid ${holder}) holds ${p.lockFile}`);
      if (!told) {
        process.stderr.write(`waiting for another stack command (pid ${holder}) to finish…\n`);
        told = true;
      }
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    if (readPid(p.lockFile) === process.pid) rmSync(p.lockFile, { force: true });
  }
}

function mtimeMs(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------------------------------------
// State.

/** The PID of our running instance (PID file, or the server's own record), cleaning stale files. */
export function ourPid(ctx: ServerContext, def: ServerDef): number | undefined {
  const file = ctx.p.pidFile(def.name);
  const recorded = readPid(file);
  if (recorded !== undefined && isOurProcess(recorded, def.signature(ctx))) return recorded;
  const adopted = def.adopt(ctx);
  if (adopted !== undefined && isOurProcess(adopted, def.signature(ctx))) {
    writePid(file, adopted);
    return adopted;
  }
  if (recorded !== undefined) removePid(file);
  return undefined;
}

export async function statusOf(ctx: ServerContext, def: ServerDef): Promise<ServerStatus> {
  const pid = ourPid(ctx, def);
  const healthy = await def.healthy(ctx).catch(() => false);
  const state: ServerState =
    pid !== undefined ? (healthy ? 'running' : 'unhealthy') : healthy ? 'external' : 'stopped';
  const status: ServerStatus = {
    name: def.name,
    state,
    pid: pid ?? null,
    address: def.address,
    log: ctx.p.logFile(def.name),
  };
  if (state === 'external') status.note = `something not started by this stack answers on ${def.address}`;
  return status;
}

// ---------------------------------------------------------------------------------------------
// Start.

export class StartError extends Error {
  constructor(
    readonly server: ServerName,
    readonly reason: string,
    readonly logs: string[],
  ) {
    super(`${server} failed to start: ${reason}; read ${logs[0] ?? ''}`);
  }
}

function logsOf(ctx: ServerContext, def: ServerDef): string[] {
  return [ctx.p.logFile(def.name), ...def.extraLogs(ctx).filter((f) => existsSync(f))];
}

async function portUser(def: ServerDef): Promise<number | undefined> {
  for (const port of [def.port, ...def.otherPorts]) {
    if (await tcpOpen(port)) return port;
  }
  return undefined;
}

/**
 * Makes sure the server is running and healthy: starts it when stopped, waits when it is still
 * coming up, and runs its idempotent setup. Throws StartError.
 */
export async function ensureStarted(ctx: ServerContext, def: ServerDef): Promise<ServerStatus> {
  const t0 = Date.now();
  const fail = (reason: string) => new StartError(def.name, reason, logsOf(ctx, def));
  const current = await statusOf(ctx, def);

  if (current.state === 'external') {
    const note =
      def.name === 'milvus'
        ? `a Milvus not started by this stack is healthy on ${def.address} (only one Milvus fits on a machine): using it`
        : `something not started by this stack answers on ${def.address}: using it`;
    return { ...current, note };
  }

  let pid = current.pid ?? undefined;
  let note = 'already running';
  if (current.state === 'unhealthy' && pid !== undefined) {
    const livePid = pid;
    const waited = await waitUntil(() => def.healthy(ctx), {
      timeoutMs: def.startTimeoutMs,
      abort: () => (isAlive(livePid) ? undefined : 'the process exited'),
    });
    if (!waited.ok) {
      throw fail(
        `${waited.reason} (it was running but unhealthy; try npm run stack -- down ${def.name}, then up)`,
      );
    }
    note = `became healthy after ${seconds(Date.now() - t0)}`;
  } else if (current.state === 'stopped') {
    const busy = await portUser(def);
    if (busy !== undefined) throw fail(`port ${busy} is in use by another process`);
    try {
      await def.prepare(ctx);
      pid = await def.start(ctx);
    } catch (err) {
      throw fail(err instanceof Error ? err.message : String(err));
    }
    writePid(ctx.p.pidFile(def.name), pid);
    const started = pid;
    const waited = await waitUntil(() => def.healthy(ctx), {
      timeoutMs: def.startTimeoutMs,
      abort: () => (isAlive(started) ? undefined : 'the process exited'),
    });
    if (!waited.ok) {
      await stopPid(ctx, def, started);
      throw fail(waited.reason);
    }
    note = `started in ${seconds(Date.now() - t0)}`;
  }

  try {
    await def.afterStart(ctx);
  } catch (err) {
    throw fail(`setup after start failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  return { ...current, state: 'running', pid: pid ?? null, note };
}

// ---------------------------------------------------------------------------------------------
// Stop.

async function stopPid(ctx: ServerContext, def: ServerDef, pid: number): Promise<string> {
  let how = 'stopped';
  const graceful = await def.stop(ctx, pid).catch(() => false);
  if (!graceful || isAlive(pid)) {
    const killed = await terminate(pid, def.stopGraceMs);
    if (killed) how = `killed (no exit ${seconds(def.stopGraceMs)} after SIGTERM)`;
  }
  removePid(ctx.p.pidFile(def.name));
  return how;
}

/** Stops our instance of the server (never anything we did not start). */
export async function stopServerIn(ctx: ServerContext, def: ServerDef): Promise<string> {
  const pid = ourPid(ctx, def);
  if (pid === undefined) {
    removePid(ctx.p.pidFile(def.name));
    return 'not running';
  }
  return stopPid(ctx, def, pid);
}

// ---------------------------------------------------------------------------------------------
// Misc.

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** As root: PostgreSQL (run as `postgres`) must reach its binaries and data folder. */
export async function checkPostgresReach(ctx: ServerContext): Promise<void> {
  if (!ctx.root) return;
  const bin = await ctx.pgBin();
  for (const dir of [bin, ctx.p.data]) {
    if (!(await canPostgresTraverse(dir))) {
      throw new Error(
        `the postgres user cannot traverse ${dir} (PostgreSQL refuses to run as root): ` +
          `chmod o+x every folder on the way, or set DBOPS_STACK_HOME to a folder under /var/tmp`,
      );
    }
  }
}

/** The last `n` lines of a file ('' when it does not exist). Reads only the end of big files. */
export function tailLines(file: string, n: number): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return '';
  }
  try {
    const size = statSync(file).size;
    let start = size;
    let text = '';
    const chunk = 64 * 1024;
    while (start > 0) {
      const from = Math.max(0, start - chunk);
      const buf = Buffer.alloc(start - from);
      readSync(fd, buf, 0, buf.length, from);
      text = buf.toString('utf8') + text;
      start = from;
      if (text.split('\n').length > n + 1) break;
    }
    const lines = text.replace(/\n$/, '').split('\n');
    return lines.slice(Math.max(0, lines.length - n)).join('\n');
  } finally {
    closeSync(fd);
  }
}

export { SERVERS };
