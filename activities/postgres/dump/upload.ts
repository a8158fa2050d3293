import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Context } from '@temporalio/activity';
import type { BackupCompression } from '../../../common/backup';
import { FailureType, failure } from '../../../common/failures';
import type { AgeSettings, BackupStore } from '../../storage';
import { ageEncrypt } from '../age';
import { toolEnv } from '../binaries';
import { compress, exitOf, gateOnSuccess, HashTap, StderrTail } from '../dump-pipeline';
import type { PgDump } from './pg-dump';

/** One dump on its way into the store. */
export interface Dumping {
  readonly compression: BackupCompression;
  /** Encrypt for these recipients after compressing (zstd's stdout straight into age). */
  readonly age?: AgeSettings;
  readonly store: BackupStore;
  readonly key: string;
  /** Scratch folder (the directory format's pg_dump output; only that format has one). */
  readonly tmp: string | undefined;
  readonly kills: (() => void)[];
  /** What the heartbeats report. */
  readonly progress: { phase: string; bytes: number };
  readonly pgDump: PgDump;
}

/** The stored object as it was written: compressed size and SHA-256, and the uncompressed size when known. */
export interface Uploaded {
  readonly sizeBytes: number;
  readonly sha256: string;
  readonly rawBytes: number;
}

/**
 * plain and custom: pg_dump's stdout streams through the compressor into the store, written once.
 * A custom archive written to a pipe has no data offsets; restore fills them in before a parallel
 * pg_restore (custom-archive.ts), so nothing is lost by not writing a file here.
 */
export async function uploadStream(d: Dumping): Promise<Uploaded> {
  const pgDump = d.pgDump.start(undefined, 'pipe');
  const pgDumpExit = pgDump.then((r) => {
    if (r.exitCode !== 0) throw d.pgDump.failed(r.exitCode, r.signal);
  });
  const exit: { failed?: unknown } = {};
  pgDumpExit.catch((err: unknown) => (exit.failed = err));
  const handOver = d.compression === 'zstd';
  const raw = handOver ? undefined : new HashTap();
  const stdout = pgDump.stdout as unknown as Readable;
  const c = compress(d.compression, raw ? stdout.pipe(raw) : stdout, { handOver });
  d.kills.push(() => c.kill());
  // pg_dump | zstd | age: Node sees ciphertext only (the session allows encryption with zstd only).
  const e = d.age ? ageEncrypt(d.age, c.stream) : undefined;
  if (e) d.kills.push(() => e.kill());
  d.progress.phase = 'dumping+uploading';
  let stored: { sizeBytes: number; sha256: string };
  try {
    stored = await put(d, e?.stream ?? c.stream, async () => {
      await pgDumpExit;
      await c.done;
      await e?.done;
    });
  } catch (err) {
    // pg_dump failing on its own explains the failure best (its stderr; the upload then fails
    // because the stream ended early). Otherwise the store failed (a full folder, S3 gone) and put
    // stopped pg_dump: the store's error says why.
    throw exit.failed ?? err;
  }
  // zstd reads pg_dump directly, so the uncompressed size comes from the re-read check.
  return { ...stored, rawBytes: raw?.bytes ?? 0 };
}

/** directory: pg_dump -j writes a folder, which one tar stream carries into the store. */
export async function uploadDirectory(d: Dumping): Promise<Uploaded> {
  if (!d.tmp) throw new Error('the directory format needs a scratch folder');
  const target = path.join(d.tmp, 'dump.pgdir');
  const pgDump = await d.pgDump.start(target, 'ignore');
  if (pgDump.exitCode !== 0) throw d.pgDump.failed(pgDump.exitCode, pgDump.signal);
  d.progress.phase = 'compressing+uploading';
  const tar = spawn('tar', ['-C', target, '-cf', '-', '.'], {
    env: toolEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  d.kills.push(() => tar.kill('SIGKILL'));
  const tarTail = new StderrTail();
  tarTail.attach(tar.stderr);
  const rawTap = new HashTap();
  const tarStream = tar.stdout.pipe(rawTap);
  const tarExit = exitOf(tar).then(({ code }) => {
    if (code !== 0)
      throw failure(
        FailureType.ProcessFailed,
        `tar of the directory archive exited ${code}: ${tarTail.toString()}`,
      );
  });
  tarExit.catch(() => undefined);
  const c = compress(d.compression, tarStream);
  d.kills.push(() => c.kill());
  const stored = await put(d, c.stream, async () => {
    await tarExit;
    await c.done;
  });
  return { ...stored, rawBytes: rawTap.bytes };
}

/**
 * Hashes `stream` into the store under the dump's key; `producersDone` gates the end of the
 * upload, so a producer that failed fails the upload instead of completing a short object.
 */
async function put(
  d: Dumping,
  stream: Readable,
  producersDone: () => Promise<void>,
): Promise<{ sizeBytes: number; sha256: string }> {
  const hashed = new HashTap();
  const counter = setInterval(() => (d.progress.bytes = hashed.bytes), 500);
  try {
    await d.store.put(d.key, stream.pipe(hashed).pipe(gateOnSuccess(producersDone)), {
      signal: Context.current().cancellationSignal,
    });
  } catch (err) {
    // A store that failed (ENOSPC, S3 gone) stops reading: pg_dump, tar and zstd would block on a
    // full pipe for good, and the activity would heartbeat on until its 6-hour timeout. Stop them.
    for (const kill of d.kills) kill();
    throw err;
  } finally {
    clearInterval(counter);
  }
  return { sizeBytes: hashed.bytes, sha256: hashed.digest() };
}
