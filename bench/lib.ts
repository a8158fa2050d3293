// Helpers shared by the benchmark scripts (not tests): options, statistics, shell timing, a worker
// in a child process whose peak RSS is its own.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { stackVars } from '../test/helpers/stack';

const args = process.argv.slice(2);
export const hasFlag = (name: string) => args.includes(`--${name}`);
export const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
export const secs = (ms: number) => (ms / 1000).toFixed(1);

export const vars = stackVars();
export const pgBin = (tool: string) => path.join(vars.DBOPS_PG_BIN_DIR!, tool);

/** libpq environment of the dev stack for child processes, connected to `database`. */
export function pgEnvFor(database: string): Record<string, string> {
  return {
    PATH: process.env.PATH!,
    PGHOST: vars.PGHOST!,
    PGPORT: vars.PGPORT!,
    PGUSER: vars.PGUSER!,
    PGDATABASE: database,
  };
}

/** Runs a bash pipeline (pipefail) with `env`; returns its wall time in ms, throws when it fails. */
export function timedShell(env: Record<string, string>) {
  return (script: string): number => {
    const t = performance.now();
    const r = spawnSync('bash', ['-o', 'pipefail', '-c', script], {
      env,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    if (r.status !== 0) throw new Error(`failed: ${script}`);
    return performance.now() - t;
  };
}

export interface BenchWorker {
  child: ChildProcess;
  peakRssKb(): Promise<number>;
  stop(): Promise<void>;
}

/** A real dbops worker in a child process (so its peak RSS is its own). */
export async function startBenchWorker(env: Record<string, string>): Promise<BenchWorker> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'worker'], {
    env: { ...process.env, ...env, DBOPS_WORKFLOW_BUNDLE: 'off' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('polling task queue')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`worker exited ${code}: ${log}`)));
  });
  return {
    child,
    async peakRssKb() {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}
