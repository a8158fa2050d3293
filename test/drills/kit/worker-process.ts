/**
 * A real dbops worker in a child process of its own (`dbops worker`, as in a pod), so a drill can
 * SIGKILL it, with pg_dump/pg_restore and everything else it started (its own process group).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { REPO_ROOT } from '../../../src/config';
import { stackVars } from '../../helpers/stack';

export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything it wrote to stderr and stdout so far. */
  log(): string;
  /** Resolves when the log matches `pattern` (rejects when the worker exits first or after `timeoutMs`). */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** SIGKILL to the whole process group: the worker and its children die at once. */
  kill(): void;
  /** Resolves when the worker has exited (after kill(), or on its own). */
  exited: Promise<number | null>;
}

const running = new Set<WorkerProcess>();

/**
 * Starts `dbops worker` with `env` on top of the dev stack's server settings and resolves once it
 * polls its task queue. `env` must name the drill's own DBOPS_TASK_QUEUE and namespace. Nothing of
 * the developer's shell (DBOPS_*, PG*, AWS_*) leaks in: only PATH, HOME and what is given.
 * `logFile`, when given, receives a copy of everything the worker writes.
 */
export async function startWorkerProcess(
  env: Record<string, string | undefined>,
  opts: { logFile?: string; timeoutMs?: number } = {},
): Promise<WorkerProcess> {
  const vars = stackVars();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'worker'], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TMPDIR: process.env.TMPDIR,
      PGHOST: vars.PGHOST,
      PGPORT: vars.PGPORT,
      PGUSER: vars.PGUSER,
      PGDATABASE: vars.PGDATABASE,
      DBOPS_PG_BIN_DIR: vars.DBOPS_PG_BIN_DIR,
      DBOPS_STACK_HOME: vars.DBOPS_STACK_HOME,
      DBOPS_TEMPORAL_ADDRESS: vars.DBOPS_TEMPORAL_ADDRESS,
      DBOPS_TEMPORAL_UI_URL: vars.DBOPS_TEMPORAL_UI_URL,
      DBOPS_MILVUS_ADDRESS: vars.DBOPS_MILVUS_ADDRESS,
      // The run's bundle of the current workflows/ (test/global-setup.ts), else bundle from source:
      // a stale dist/ build must never run in a drill.
      DBOPS_WORKFLOW_BUNDLE: process.env.DBOPS_WORKFLOW_BUNDLE ?? 'off',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let text = '';
  const file = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a' }) : undefined;
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    text += d.toString();
    file?.write(d);
    for (const w of waiters) w();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      exitCode = code;
      file?.end();
      for (const w of waiters) w();
      resolve(code);
    }),
  );
  const proc: WorkerProcess = {
    child,
    pid: child.pid!,
    log: () => text,
    waitForLog(pattern, timeoutMs = 120_000) {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`worker log never matched ${pattern} in ${timeoutMs} ms:\n${text.slice(-3000)}`));
        }, timeoutMs);
        const check = () => {
          if (pattern.test(text)) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          } else if (exitCode !== undefined) {
            clearTimeout(timer);
            waiters.delete(check);
            reject(
              new Error(
                `worker exited (${exitCode}) before its log matched ${pattern}:\n${text.slice(-3000)}`,
              ),
            );
          }
        };
        waiters.add(check);
        check();
      });
    },
    kill() {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    },
    exited,
  };
  running.add(proc);
  void exited.then(() => running.delete(proc));
  await proc.waitForLog(/polling task queue/i, opts.timeoutMs ?? 120_000);
  return proc;
}

/** Kills every worker this test file started that is still running (for afterAll). */
export async function killAllWorkerProcesses(): Promise<void> {
  const all = [...running];
  for (const p of all) p.kill();
  await Promise.all(all.map((p) => p.exited));
}
