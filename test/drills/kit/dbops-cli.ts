/**
 * `dbops` as a user runs it, from source (node with tsx, from the repository root): the CLI a drill
 * types and the worker processes it kills (worker-process.ts) start the same way, with the same
 * environment.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../../src/config';
import { stackServerEnv } from '../../helpers/stack';

/**
 * How to start `dbops <args>`: the dev stack's servers with `env` on top. Nothing of the
 * developer's shell (DBOPS_*, PG*, AWS_*) leaks in: only PATH, HOME, TMPDIR and what is given.
 */
export function dbopsCommand(
  args: readonly string[],
  env: Record<string, string | undefined>,
): { file: string; args: string[]; options: { cwd: string; env: Record<string, string | undefined> } } {
  return {
    file: process.execPath,
    args: ['--import', 'tsx', 'src/cli/main.ts', ...args],
    options: {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        TMPDIR: process.env.TMPDIR,
        // Never the developer's own SSH key or agent: a test that signs passes its key with --key.
        DBOPS_SIGNING_KEY: 'none',
        ...stackServerEnv(),
        ...env,
      },
    },
  };
}

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** `dbops <args>` run to its end with `env` (plain text: NO_COLOR); its exit code and output. */
export async function dbops(env: Record<string, string | undefined>, ...args: string[]): Promise<CliRun> {
  const cmd = dbopsCommand(args, { NO_COLOR: '1', ...env });
  return promisify(execFile)(cmd.file, cmd.args, cmd.options).then(
    (ok) => ({ code: 0, stdout: ok.stdout, stderr: ok.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({
      code: e.code,
      stdout: e.stdout,
      stderr: e.stderr,
    }),
  );
}

/**
 * `env` with the dev stack's server settings (stackServerEnv: PG*, DBOPS_PG_BIN_DIR, the Temporal
 * and Milvus addresses, DBOPS_STACK_HOME) taken out, for dbops, dbopsCommand and startWorkerProcess:
 * a child's environment leaves out a variable whose value is undefined, so the process sees only
 * what `env` names (plus PATH, HOME, TMPDIR and DBOPS_SIGNING_KEY=none). For a test of what dbops
 * makes of an environment the dev stack did not write, e.g. the spec scripts' variable names.
 */
export function withoutStackServers(
  env: Record<string, string | undefined>,
): Record<string, string | undefined> {
  const unset = Object.fromEntries(Object.keys(stackServerEnv()).map((name) => [name, undefined]));
  return { ...unset, ...env };
}
