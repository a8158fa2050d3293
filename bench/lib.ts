// Helpers shared by the benchmark scripts (not tests): options, statistics, shell timing, a worker
// in a child process whose peak RSS is its own.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { REPO_ROOT } from '../src/config';
import { deleteNamespace, ensureNamespace, testNamespaceName } from '../src/stack/namespaces';
import { stackVars, testConfig } from '../test/helpers/stack';

const args = process.argv.slice(2);
export const hasFlag = (name: string) => args.includes(`--${name}`);
export const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
export const secs = (ms: number) => (ms / 1000).toFixed(1);

/** The dev stack's settings; empty until `npm run stack -- up` has run (a script may start it first). */
export const vars: Record<string, string> = (() => {
  try {
    return stackVars();
  } catch {
    return {};
  }
})();
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
  resetPeak(): Promise<boolean>;
  stop(): Promise<void>;
}

/** Settings of the production worker's process: NODE_OPTIONS and MALLOC_ARENA_MAX of the k8s Deployment. */
export function deployProcessEnv(): Record<string, string> {
  const text = readFileSync(path.join(REPO_ROOT, 'deploy', 'k8s', 'base', 'worker-deployment.yaml'), 'utf8');
  const out: Record<string, string> = {};
  for (const name of ['NODE_OPTIONS', 'MALLOC_ARENA_MAX']) {
    const m = new RegExp(`- name: ${name}\\s*\\n\\s*value:\\s*['"]?([^'"\\n]*)`).exec(text);
    if (m?.[1]?.trim()) out[name] = m[1].trim();
  }
  return out;
}

/** Resets the kernel's peak-RSS counter of `pid` (Linux ≥ 4.0); false when not permitted. */
export async function resetPeak(pid: number): Promise<boolean> {
  try {
    await writeFile(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * The production dbops worker (`npm run build`, then `node dist/src/cli/main.js worker` with the
 * Deployment's NODE_OPTIONS and MALLOC_ARENA_MAX, loading the prebundled workflows) in a child
 * process, so its peak RSS is its own. Call `resetPeak()` before the timed work.
 */
export async function startBenchWorker(env: Record<string, string>): Promise<BenchWorker> {
  const build = spawnSync('npm', ['run', '-s', 'build'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (build.status !== 0) throw new Error('npm run build failed');
  const child = spawn(process.execPath, ['dist/src/cli/main.js', 'worker'], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...deployProcessEnv(), NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    // The worker logs JSON lines to stdout (src/worker/logging.ts); errors before that go to stderr.
    const onData = (d: Buffer) => {
      log = (log + d.toString()).slice(-20_000);
      if (log.includes('polling task queue')) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`worker exited ${code}: ${log}`)));
  });
  return {
    child,
    async peakRssKb() {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    },
    resetPeak: () => resetPeak(child.pid!),
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/**
 * A benchmark runs like a test run: a Temporal namespace, a backup folder and an S3 prefix of its
 * own (what testConfig reads), so nothing lands in the user's `default` namespace or store. Returns
 * what removes them.
 */
export async function startBenchRun(): Promise<() => Promise<void>> {
  const address = vars.DBOPS_TEMPORAL_ADDRESS!;
  const namespace = testNamespaceName(new Date(), randomBytes(3).toString('hex'));
  await ensureNamespace(address, namespace);
  const scratch = mkdtempSync(path.join(os.tmpdir(), `${namespace}-`));
  process.env.DBOPS_TEST_NAMESPACE = namespace;
  process.env.DBOPS_TEST_BACKUP_DIR = scratch;
  process.env.DBOPS_TEST_S3_PREFIX = namespace;
  // The bench's worker (a child process) inherits it: it polls where testConfig's client starts.
  process.env.DBOPS_TEMPORAL_NAMESPACE = namespace;
  return async () => {
    rmSync(scratch, { recursive: true, force: true });
    await deleteNamespace(address, namespace);
  };
}

/** Runs `fn` in a bench run of its own (startBenchRun), removed afterwards whatever happens. */
export async function inBenchRun(fn: () => Promise<void>): Promise<void> {
  const endRun = await startBenchRun();
  try {
    await fn();
  } finally {
    await endRun();
  }
}

/**
 * A fresh age key pair in `dir` (age-keygen next to the configured age), as the settings that make
 * a worker encrypt backups for it and decrypt them (the encrypted variants of the benchmarks).
 */
export function ageKeyPair(dir: string): {
  DBOPS_BACKUP_AGE_RECIPIENTS: string;
  DBOPS_BACKUP_AGE_IDENTITY: string;
} {
  const keygen = path.join(path.dirname(testConfig(vars).age.bin), 'age-keygen');
  const identity = path.join(dir, 'age-identity.txt');
  const made = spawnSync(keygen, ['-o', identity], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`${keygen} -o ${identity} failed: ${made.stderr}`);
  const recipient = spawnSync(keygen, ['-y', identity], { encoding: 'utf8' }).stdout.trim();
  return { DBOPS_BACKUP_AGE_RECIPIENTS: recipient, DBOPS_BACKUP_AGE_IDENTITY: identity };
}

/**
 * The scale-1 seed database `db` (2.16 GB, `dbops db init` + `dbops db seed --scale 1`) on the dev
 * stack's PostgreSQL, made when missing (about a minute); `sh` runs each step, timed.
 */
export function ensureSeedDatabase(db: string, sh: (cmd: string) => number, force = false): void {
  const q = spawnSync(pgBin('psql'), ['-XAtc', `SELECT 1 FROM pg_database WHERE datname = '${db}'`], {
    env: pgEnvFor('postgres'),
    encoding: 'utf8',
  });
  if (!force && q.stdout.trim() === '1') return;
  sh(
    `npm run -s dbops -- db init --database ${db} && npm run -s dbops -- db seed --scale 1 --database ${db}`,
  );
}
