/**
 * The backup's own re-read check of an encrypted archive on a worker that only encrypts (it has
 * the recipients, not the identity: a common split, the identity living only where restores run).
 * It proves what it can without decrypting: the stored size and SHA-256 and age's header. That the
 * ciphertext decrypts and restores is proven by the verification, on a worker with the identity.
 */
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import type { BackupStore } from '../storage';
import { HashTap } from './dump-pipeline';
import { withProgress } from './progress';

/** The first line of every age file (age-encryption.org/v1 format). */
const AGE_HEADER = 'age-encryption.org/v1\n';

export async function checkCiphertext(
  store: BackupStore,
  key: string,
  expected: { readonly sizeBytes: number; readonly sha256: string },
  broken: (what: string) => Error,
): Promise<{ checks: string; rawBytes: number; head: string }> {
  const hashed = new HashTap();
  let head = '';
  await withProgress(
    { everyMs: 3000, cancelled: 'verification cancelled' },
    () => ({ phase: 'verifying', bytes: hashed.bytes }),
    async () => {
      await pipeline(
        await store.get(key),
        hashed,
        new Writable({
          write(chunk: Buffer, _enc, done) {
            if (head.length < AGE_HEADER.length) head += chunk.toString('latin1').slice(0, AGE_HEADER.length);
            done();
          },
        }),
      );
    },
  );
  if (hashed.bytes !== expected.sizeBytes)
    throw broken(`read ${hashed.bytes} bytes, expected ${expected.sizeBytes}`);
  const sha = hashed.digest();
  if (sha !== expected.sha256) throw broken(`has SHA-256 ${sha}, expected ${expected.sha256}`);
  if (!head.startsWith(AGE_HEADER)) throw broken('is not an age file (no age-encryption.org/v1 header)');
  return {
    checks: `size ${hashed.bytes} B + sha256, age header (no identity on this worker: the verification decrypts it)`,
    rawBytes: 0,
    head: '',
  };
}
