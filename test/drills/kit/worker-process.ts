/**
 * A real dbops worker in a child process of its own (`dbops worker`, as in a pod), so a drill can
 * SIGKILL it, with pg_dump/pg_restore and everything else it started (its own process group).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { dbopsCommand } from './dbops-cli';
import { signal } from './process-group';

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
 * polls its task queue. `env` must name the drill's own DBOPS_TASK_QUEUE and namespace (the
 * environment is dbopsCommand's: nothing of the developer's shell).
 * `logFile`, when given, receives a copy of everything the worker writes.
 */
export async function startWorkerProcess(
  env: Record<string, string | undefined>,
  opts: { logFile?: string; timeoutMs?: number } = {},
): Promise<WorkerProcess> {
  const cmd = dbopsCommand(['worker'], {
    // The run's bundle of the current workflows/ (test/global-setup.ts), else bundle from source:
    // a stale dist/ build must never run in a drill.
    DBOPS_WORKFLOW_BUNDLE: process.env.DBOPS_WORKFLOW_BUNDLE ?? 'off',
    ...env,
  });
  const child = spawn(cmd.file, cmd.args, {
    ...cmd.options,
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
      signal(-child.pid!, 'SIGKILL'); // false when already gone
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
