/**
 * Running commands to completion (execa) and the root/postgres user switch.
 *
 * execa 9 is ESM-only and one of its dependencies has import-only exports, so it cannot be
 * require()d from this CommonJS package: it is loaded with a dynamic import.
 */
import type * as Execa from 'execa';
import type { Options } from 'execa';

type ExecaModule = typeof Execa;
let execaModule: Promise<ExecaModule> | undefined;

function loadExeca(): Promise<ExecaModule> {
  execaModule ??= import('execa');
  return execaModule;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  timeoutMs?: number;
  /** Run as the `postgres` system user when we are root (initdb/postgres refuse root). */
  asPostgres?: boolean;
  /** Append stdout and stderr to this file instead of capturing them. */
  logFile?: string;
  /** Start in a new session, so a server it forks (pg_ctl start) does not share our process group. */
  detached?: boolean;
}

export interface RunResult {
  ok: boolean;
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  /** One line saying why it failed (empty when ok). */
  reason: string;
}

export async function run(
  file: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const { execa } = await loadExeca();
  let cmd = file;
  let argv = [...args];
  if (options.asPostgres && isRoot()) {
    cmd = 'runuser';
    argv = ['-u', 'postgres', '--', file, ...args];
  }
  const target = options.logFile ? ({ file: options.logFile, append: true } as const) : ('pipe' as const);
  const execaOptions: Options = {
    reject: false,
    stdin: 'ignore',
    stdout: target,
    stderr: target,
    env: options.env,
    extendEnv: true,
    cwd: options.cwd,
    timeout: options.timeoutMs,
    detached: options.detached ?? false,
    stripFinalNewline: true,
  };
  const result = await execa(cmd, argv, execaOptions);
  const stdout = typeof result.stdout === 'string' ? result.stdout : '';
  const stderr = typeof result.stderr === 'string' ? result.stderr : '';
  const ok = !result.failed;
  let reason = '';
  if (!ok) {
    const lastLine = (stderr || stdout).trim().split('\n').pop() ?? '';
    reason = result.timedOut
      ? `${file} timed out after ${options.timeoutMs} ms`
      : result.exitCode === undefined
        ? (result.shortMessage ?? `${file} failed`)
        : `${file} exited with code ${result.exitCode}${lastLine ? `: ${lastLine}` : ''}`;
  }
  return { ok, exitCode: result.exitCode, stdout, stderr, reason };
}

/** As root: can the `postgres` user traverse (search) this directory and every one above it? */
export async function canPostgresTraverse(dir: string): Promise<boolean> {
  if (!isRoot()) return true;
  const r = await run('runuser', ['-u', 'postgres', '--', 'test', '-x', dir], { cwd: '/' });
  return r.ok;
}
