import { constants } from 'node:fs';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runSshTool, type SshToolRun } from '../../activities/approvals/ssh-tool';

/**
 * OpenSSH's ssh-keygen as `dbops doctor` uses it: found on PATH the way the worker finds it
 * (activities/approvals/signatures.ts runs `ssh-keygen` by name with the process PATH), asked
 * whether each allowed-signers key is a valid public key, and made to sign and verify a probe.
 */

/** The first executable `name` on `searchPath` (PATH syntax), or undefined. */
export async function findOnPath(name: string, searchPath: string | undefined): Promise<string | undefined> {
  for (const dir of (searchPath ?? '').split(path.delimiter).filter(Boolean)) {
    const file = path.join(dir, name);
    try {
      await access(file, constants.X_OK);
      return file;
    } catch {
      // Not in this folder (or not executable): PATH lookup goes on to the next one.
    }
  }
  return undefined;
}

/** ssh-keygen at `exe` with nothing of the caller's environment but PATH (no agent socket, no HOME). */
export const runSshKeygen = (exe: string, args: string[], input = ''): Promise<SshToolRun> =>
  runSshTool(exe, args, { input, timeoutMs: 10_000 });

/** The last line of a tool's output: ssh-keygen puts the reason there. */
export function lastLine(text: string): string {
  return text.trim().split('\n').pop() || 'no output';
}

/** `ssh-keygen -l` of one public key: its SHA256 fingerprint, or what ssh-keygen says is wrong. */
export async function fingerprint(
  exe: string,
  keyType: string,
  key: string,
): Promise<{ fingerprint: string } | { problem: string }> {
  const r = await runSshKeygen(exe, ['-l', '-f', '-'], `${keyType} ${key}\n`);
  const fp = /^\d+ (SHA256:\S+) /.exec(r.stdout)?.[1];
  if (r.exitCode !== 0 || !fp) {
    return { problem: `not a valid ${keyType} public key (ssh-keygen: ${lastLine(r.stderr || r.stdout)})` };
  }
  return { fingerprint: fp };
}

/**
 * Signs a probe with a throwaway Ed25519 key and verifies it against a one-line allowed-signers
 * file in `namespace`: the whole `-Y` path the CLI and the worker use, as this user. It catches an
 * ssh-keygen too old for `-Y` and a uid without a passwd entry (ssh-keygen exits "No user exists
 * for uid", e.g. under an arbitrary runAsUser). Returns the problem, or undefined when it works.
 */
export async function signAndVerifyProbe(exe: string, namespace: string): Promise<string | undefined> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dbops-doctor-ssh-'));
  try {
    const key = path.join(dir, 'probe_ed25519');
    const message = path.join(dir, 'probe.txt');
    const allowed = path.join(dir, 'allowed_signers');
    await writeFile(message, 'dbops doctor probe\n');
    const steps: [string, () => Promise<SshToolRun>][] = [
      [
        'generate a key',
        () => runSshKeygen(exe, ['-q', '-t', 'ed25519', '-N', '', '-C', 'probe', '-f', key]),
      ],
      ['sign', () => runSshKeygen(exe, ['-Y', 'sign', '-n', namespace, '-f', key, message])],
      [
        'verify',
        async () => {
          const pub = (await readFile(`${key}.pub`, 'utf8')).trim();
          await writeFile(allowed, `probe@dbops-doctor ${pub}\n`);
          const signed = await readFile(message, 'utf8');
          const verifyArgs = ['-f', allowed, '-I', 'probe@dbops-doctor', '-n', namespace, '-s'];
          return runSshKeygen(exe, ['-Y', 'verify', ...verifyArgs, `${message}.sig`], signed);
        },
      ],
    ];
    for (const [what, step] of steps) {
      const r = await step();
      if (r.exitCode !== 0) return `${exe} cannot ${what} (${lastLine(r.stderr || r.stdout)})`;
    }
    return undefined;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
