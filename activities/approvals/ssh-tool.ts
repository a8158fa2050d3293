import { FailureType, failure } from '../../common/failures';
import { toolEnv } from '../postgres/binaries';

export interface SshToolRun {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs an OpenSSH client tool (ssh-keygen, ssh-add) to its end, never throwing on a non-zero exit:
 * callers read ssh-keygen's verdict from its exit code and output. Its environment is PATH plus
 * only the `pass` variables the caller needs (the CLI: HOME and the agent socket). One that cannot
 * start (missing, killed by the timeout) is Misconfigured, naming the package to install.
 */
export async function runSshTool(
  file: string,
  args: readonly string[],
  options: { input?: string; pass?: readonly string[]; timeoutMs?: number } = {},
): Promise<SshToolRun> {
  // execa is ESM-only with import-only dependencies: load it lazily (a static import breaks require()).
  const { execa } = await import('execa');
  const env = toolEnv();
  for (const name of options.pass ?? []) if (process.env[name]) env[name] = process.env[name];
  const r = await execa(file, [...args], {
    input: options.input ?? '',
    env,
    extendEnv: false,
    reject: false,
    timeout: options.timeoutMs ?? 15_000,
  });
  if (r.exitCode === undefined) {
    throw failure(
      FailureType.Misconfigured,
      `${file} could not run (${r.shortMessage}): install OpenSSH's client tools (Debian: apt-get install openssh-client)`,
    );
  }
  return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}
