import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  SIGNATURE_NAMESPACE,
  type SignedStatement,
  type Statement,
  statementText,
} from '../../common/approvals';
import { FailureType, failure } from '../../common/failures';
import { runSshTool } from '../../activities/approvals/ssh-tool';

/** `--key none` (or DBOPS_SIGNING_KEY=none): never sign, even with a key at hand. */
export const NO_KEY = 'none';

/** The key `ssh-keygen -Y sign -f` is given: a private key file, or a public key whose private half is in ssh-agent. */
export interface SigningKey {
  readonly file: string;
  readonly source: string;
  dispose(): Promise<void>;
}

const keep = async () => undefined;

/**
 * ssh-keygen and ssh-add as the operator runs them: HOME (~/.ssh) and the agent's socket pass, and
 * a passphrase prompt (on the terminal) may take its time.
 */
const sshTool = (file: 'ssh-keygen' | 'ssh-add', args: string[], input?: string) =>
  runSshTool(file, args, { input, pass: ['HOME', 'SSH_AUTH_SOCK'], timeoutMs: 120_000 });

/**
 * The key to sign with: `--key` (or DBOPS_SIGNING_KEY), else the ssh-agent's first key, else
 * ~/.ssh/id_ed25519; undefined when there is none (the decision goes unsigned, and a worker that
 * requires signatures refuses it naming --key).
 */
export async function findSigningKey(explicit: string | undefined): Promise<SigningKey | undefined> {
  if (explicit === NO_KEY) return undefined;
  if (explicit !== undefined) {
    if (!existsSync(explicit)) {
      throw failure(
        FailureType.InvalidInput,
        `signing key ${explicit} does not exist: pass --key <file> with your SSH private key (or its .pub with the key in ssh-agent), or --key none to send the decision unsigned`,
      );
    }
    return { file: explicit, source: explicit, dispose: keep };
  }
  if (process.env.SSH_AUTH_SOCK) {
    const listed = await sshTool('ssh-add', ['-L']);
    const first = listed.exitCode === 0 ? listed.stdout.split('\n').find((l) => l.trim()) : undefined;
    if (first) {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'dbops-key-'));
      const file = path.join(dir, 'agent-key.pub');
      await writeFile(file, `${first}\n`, { mode: 0o600 });
      return {
        file,
        source: `ssh-agent (${first.split(' ').slice(2).join(' ') || first.split(' ')[0]})`,
        dispose: () => rm(dir, { recursive: true, force: true }),
      };
    }
  }
  const home = process.env.HOME ?? os.homedir();
  const fallback = path.join(home, '.ssh', 'id_ed25519');
  return existsSync(fallback) ? { file: fallback, source: fallback, dispose: keep } : undefined;
}

/** Signs `statement` with OpenSSH (`ssh-keygen -Y sign -n dbops-restore`): the exact bytes and the signature. */
export async function signStatement(statement: Statement, key: SigningKey): Promise<SignedStatement> {
  const text = statementText(statement);
  const r = await sshTool('ssh-keygen', ['-Y', 'sign', '-n', SIGNATURE_NAMESPACE, '-f', key.file], text);
  if (r.exitCode !== 0 || !r.stdout.includes('BEGIN SSH SIGNATURE')) {
    throw failure(
      FailureType.InvalidInput,
      `ssh-keygen -Y sign with ${key.source} failed (${r.stderr.trim() || `exit ${r.exitCode}`}): pass --key with a readable SSH private key, or load it into ssh-agent`,
    );
  }
  return { statement: text, signature: `${r.stdout.trim()}\n` };
}

/** Signs with the key found for `explicit` (findSigningKey), or returns undefined when there is none. */
export async function signIfKey(
  statement: Statement,
  explicit: string | undefined,
): Promise<SignedStatement | undefined> {
  const key = await findSigningKey(explicit);
  if (!key) return undefined;
  try {
    return await signStatement(statement, key);
  } finally {
    await key.dispose();
  }
}
