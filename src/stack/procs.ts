/** Detached server processes, their PID files, and stopping them. */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export function readPid(file: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number.parseInt(text.trim().split('\n')[0] ?? '', 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export function writePid(file: string, pid: number): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${pid}\n`);
}

export function removePid(file: string): void {
  rmSync(file, { force: true });
}

/** True for a live process (a zombie counts as dead). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

/** The command line of a process, arguments joined by spaces; undefined if unknown. */
export function cmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return undefined;
  }
}

/** Alive, and (where /proc tells) its command line contains every one of `signature`. */
export function isOurProcess(pid: number, signature: readonly string[]): boolean {
  if (!isAlive(pid)) return false;
  const cmd = cmdline(pid);
  if (cmd === undefined) return true;
  return signature.every((s) => cmd.includes(s));
}

export interface DetachedOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logFile: string;
}

/**
 * Starts a long-running server in its own session/process group with stdout and stderr appended
 * to its log file; we do not wait for it, and it outlives this process.
 */
export function spawnDetached(file: string, args: readonly string[], options: DetachedOptions): number {
  mkdirSync(path.dirname(options.logFile), { recursive: true });
  const fd = openSync(options.logFile, 'a');
  try {
    const child = spawn(file, [...args], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: options.env ?? process.env,
      cwd: options.cwd,
    });
    child.on('error', () => {
      /* reported below through the missing pid, or later through the health check */
    });
    child.unref();
    if (child.pid === undefined) throw new Error(`cannot run ${file}`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal); // the whole group: e.g. milvus-server's Python wrapper and its milvus child
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return isAlive(pid) || groupHasLiveMember(pid);
  } catch {
    return isAlive(pid);
  }
}

function groupHasLiveMember(pgid: number): boolean {
  // kill(-pgid, 0) also succeeds while only zombies are left; look for a live member in /proc.
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[2] === String(pgid) && fields[0] !== 'Z' && fields[0] !== 'X') return true;
    } catch {
      /* gone meanwhile */
    }
  }
  return false;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** SIGTERM the process group, wait up to graceMs, then SIGKILL. Returns true when it had to kill. */
export async function terminate(pid: number, graceMs: number): Promise<boolean> {
  signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!groupAlive(pid)) return false;
    await sleep(100);
  }
  signalGroup(pid, 'SIGKILL');
  const killDeadline = Date.now() + 5000;
  while (Date.now() < killDeadline && groupAlive(pid)) await sleep(100);
  return true;
}
