/**
 * Client-side backup encryption with age (age-encryption.org, a real, audited tool: Debian's `age`
 * in the image, `go install filippo.io/age/cmd/...` in the dev stack). The backup pipeline is
 * `pg_dump | zstd | age -r …` with each stage's stdout the next one's stdin, so no plaintext byte
 * passes through Node or lands on disk; Node only hashes and stores ciphertext. Verification and
 * restore run `age -d -i <identity file>` in front of the decompressor.
 *
 * The recipients are public keys (argv is fine); the identity is a file (a Kubernetes Secret) whose
 * path alone reaches age's argv, never its content.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { FailureType, failure } from '../../common/failures';
import type { AgeSettings } from '../storage/types';
import { toolEnv } from './binaries';
import { type Compressor, exitOf, StderrTail } from './dump-pipeline';

/** What a manifest records of a recipient: the first 16 hex digits of SHA-256 of its `age1…` string. */
export const recipientFingerprint = (recipient: string): string =>
  createHash('sha256').update(recipient).digest('hex').slice(0, 16);

/** Encrypts `input` (another child's stdout pipe: age reads it directly) for the recipients. */
export function ageEncrypt(age: AgeSettings, input: Readable): Compressor {
  const child = spawn(age.bin, ['--encrypt', ...age.recipients.flatMap((r) => ['-r', r])], {
    env: toolEnv(),
    stdio: [input, 'pipe', 'pipe'],
  });
  // Our end of the pipe closes: if age dies, the compressor gets EPIPE instead of blocking forever.
  input.destroy();
  const tail = new StderrTail();
  tail.attach(child.stderr);
  const done = exitOf(child).then(({ code, signal }) => {
    if (code !== 0)
      throw new Error(
        `age --encrypt ${signal ? `killed by ${signal}` : `exited ${code}`}: ${tail.toString()}`,
      );
  });
  done.catch(() => undefined);
  return { stream: child.stdout, done, kill: () => child.kill('SIGKILL') };
}

export interface Decryptor {
  /** Ciphertext in (null when age reads a local file itself). */
  readonly input: Writable | null;
  /** Plaintext out (the decompressor's input). */
  readonly output: Readable;
  /** Rejects with a typed failure: Misconfigured for a missing or wrong identity (never the backup's fault). */
  readonly done: Promise<void>;
  kill(): void;
}

/**
 * `age --decrypt` with the worker's identity. A missing identity is refused before anything runs;
 * "no identity matched" is Misconfigured (the backup may be fine: a verification records no verdict
 * and retention never treats it as bad); any other age error is the archive's (IntegrityCheckFailed).
 */
export function ageDecrypt(
  age: AgeSettings | undefined,
  backupId: string,
  recipients: readonly string[],
  /** A local archive age reads itself (no copy through Node); else ciphertext is written to `input`. */
  file?: string,
): Decryptor {
  if (!age?.identityFile)
    throw failure(
      FailureType.Misconfigured,
      `backup ${backupId} is encrypted with age (recipients ${recipients.join(', ')}) and this worker has no identity to decrypt it: set DBOPS_BACKUP_AGE_IDENTITY to the age identity file (a Kubernetes Secret) on the worker`,
    );
  const child = spawn(age.bin, ['--decrypt', '-i', age.identityFile, ...(file ? ['--', file] : [])], {
    env: toolEnv(),
    stdio: [file ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  child.stdin?.on('error', () => undefined);
  const tail = new StderrTail();
  tail.attach(child.stderr);
  const done = exitOf(child).then(({ code, signal }) => {
    if (code === 0) return;
    const said = tail.toString();
    const what = `age --decrypt of backup ${backupId} ${signal ? `killed by ${signal}` : `exited ${code}`}: ${said}`;
    if (/no identity matched|failed to read identit|identity file|no such file|permission denied/i.test(said))
      throw failure(
        FailureType.Misconfigured,
        `${what}; DBOPS_BACKUP_AGE_IDENTITY (${age.identityFile}) does not hold a key of its recipients (${recipients.join(', ')}): set it to the matching identity`,
      );
    throw failure(FailureType.IntegrityCheckFailed, what);
  });
  done.catch(() => undefined);
  return { input: child.stdin, output: child.stdout!, done, kill: () => child.kill('SIGKILL') };
}
