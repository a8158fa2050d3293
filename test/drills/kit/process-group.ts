/**
 * The tools a worker process runs (pg_dump, pg_restore) as a drill sees them: children in the
 * worker's own process group (worker-process.ts), found with ps and held with SIGSTOP/SIGCONT so a
 * drill can act while one is genuinely under way. Real processes and signals; nothing faked.
 */
import { execFileSync } from 'node:child_process';
import type { WorkerProcess } from './worker-process';

/**
 * Live (not zombie) processes named `tool` doing work, with their process group. A worker also
 * runs `<tool> --version` (resolving binaries): that one exits at once and is never the work.
 */
function processesNamed(tool: string): { pid: number; pgid: number }[] {
  const out = execFileSync('ps', ['-e', '-o', 'pid=,pgid=,stat=,comm=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(
      ([, , stat, comm, ...args]) => comm === tool && !stat?.startsWith('Z') && !args.includes('--version'),
    )
    .map(([pid, pgid]) => ({ pid: Number(pid), pgid: Number(pgid) }));
}

/** Sends `sig` to `pid` (a negative pid: its process group); false when it has exited. */
export function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/**
 * Waits until one of `workers` runs `tool`; returns that worker and the tool's pid. With `stop`,
 * the tool is SIGSTOPped before this returns (one that exits first does not count), so the work is
 * under way however small, and the drill acts at its own pace.
 */
export async function waitForTool(
  workers: readonly WorkerProcess[],
  tool: string,
  opts: { stop?: boolean; timeoutMs?: number } = {},
): Promise<{ worker: WorkerProcess; pid: number }> {
  const { stop = false, timeoutMs = 60_000 } = opts;
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    for (const { pid, pgid } of processesNamed(tool)) {
      const worker = workers.find((w) => w.pid === pgid);
      if (worker && (!stop || signal(pid, 'SIGSTOP'))) return { worker, pid };
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no worker ran ${tool} within ${timeoutMs} ms`);
}
