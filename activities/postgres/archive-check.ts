import { spawn } from 'node:child_process';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Context, CancelledFailure } from '@temporalio/activity';
import { type BackupCompression, type BackupFormat, backupFileKey } from '../../common/backup';
import { FailureType, failure } from '../../common/failures';
import { createBackupStore } from '../storage';
import type { StorageSettings } from '../storage/types';
import { decompress, exitOf, FileDigest, HashTap, StderrTail } from './dump-pipeline';

export interface ArchiveCheckInput {
  readonly database: string;
  readonly backupId: string;
  readonly file: string;
  readonly format: BackupFormat;
  readonly compression: BackupCompression;
  readonly sizeBytes: number;
  readonly sha256: string;
}

const HEAD_CHARS = 1 << 20;

/** pg_dump's last line of a complete plain dump. */
const PLAIN_END_MARK = '-- PostgreSQL database dump complete';

/**
 * Feeds each child's stdin until it closes it (pg_restore --list reads only the TOC, tar -t may stop
 * early) and keeps reading to the end, so the whole stream is proven decodable.
 */
function teeToChildren(children: ReturnType<typeof spawn>[], onChunk: (chunk: Buffer) => void): Writable {
  const open = children.map(() => true);
  children.forEach((child, i) => {
    child.stdin!.on('error', () => (open[i] = false));
    child.stdin!.on('close', () => (open[i] = false));
  });
  const writeTo = (i: number, chunk: Buffer) =>
    new Promise<void>((resolve) => {
      const stdin = children[i]!.stdin!;
      if (!open[i] || !stdin.writable || stdin.write(chunk)) return resolve();
      const go = () => {
        stdin.off('drain', go);
        stdin.off('close', go);
        resolve();
      };
      stdin.on('drain', go);
      stdin.on('close', go);
    });
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      onChunk(chunk);
      Promise.all(children.map((_, i) => writeTo(i, chunk))).then(() => done(), done);
    },
    final(done) {
      children.forEach((child, i) => open[i] && child.stdin!.end());
      done();
    },
  });
}

/**
 * `zstd -t` proves every frame's checksum to the end; `head`, a `zstd -d` whose output only the TOC
 * reader consumes, stops early (then it no longer gets input). The archive comes from `source` (a
 * store's stream, teed to both) or, for a local store, from the file itself, which both read.
 * Returns the uncompressed size zstd -t reports.
 */
async function zstdTest(
  source: Readable | string,
  head: ReturnType<typeof spawn>,
  kills: (() => void)[],
): Promise<number> {
  const fromFile = typeof source === 'string';
  const tester = spawn('zstd', ['-t', '-v', ...(fromFile ? ['--', source] : [])], {
    stdio: [fromFile ? 'ignore' : 'pipe', 'ignore', 'pipe'],
  });
  kills.push(() => tester.kill('SIGKILL'));
  const tail = new StderrTail();
  tail.attach(tester.stderr);
  const exited = exitOf(tester);
  if (!fromFile)
    await pipeline(
      source,
      teeToChildren([tester, head], () => undefined),
    );
  const { code, signal } = await exited;
  if (code !== 0)
    throw new Error(`zstd -t ${signal ? `killed by ${signal}` : `exited ${code}`}: ${tail.toString()}`);
  const size = /(\d+) bytes\s*$/.exec(tail.toString());
  if (!size) throw new Error(`zstd -t did not report the decompressed size: ${tail.toString()}`);
  return Number(size[1]);
}

/** Re-reads a stored archive: size, SHA-256, decompression to the end, and the format's own reader. */
export async function checkStoredArchive(
  storage: StorageSettings,
  pgRestorePath: string,
  input: ArchiveCheckInput,
): Promise<{ checks: string; rawBytes: number; head: string }> {
  const ctx = Context.current();
  const store = createBackupStore(storage);
  const key = backupFileKey(input.database, input.backupId, input.file);
  const where = store.describe(key);
  // custom+zstd: zstd -t proves the whole stream; only the head is decompressed, for pg_restore --list.
  const testWholeZstd = input.format === 'custom' && input.compression === 'zstd';
  // A local file is read by zstd itself and hashed beside it: no Node stream in the way.
  const localFile = testWholeZstd && store.localFile ? await store.localFile(key) : undefined;
  const hashed = localFile ? new FileDigest() : new HashTap();
  const kills: (() => void)[] = [];
  const onCancel = () => kills.forEach((k) => k());
  ctx.cancellationSignal.addEventListener('abort', onCancel);
  const beat = setInterval(() => ctx.heartbeat({ phase: 'verifying', bytes: hashed.bytes }), 3000);
  try {
    const source: Readable | undefined =
      hashed instanceof HashTap ? (await store.get(key)).pipe(hashed) : undefined;
    let rawBytes = 0;
    let tail = Buffer.alloc(0);
    const head = testWholeZstd
      ? spawn('zstd', ['-d', '-q', '-c', ...(localFile ? ['--', localFile] : [])], {
          stdio: [localFile ? 'ignore' : 'pipe', 'pipe', 'ignore'],
        })
      : undefined;
    if (head) kills.push(() => head.kill('SIGKILL'));
    const reader =
      input.format === 'custom'
        ? spawn(pgRestorePath, ['--list'], { stdio: [head ? head.stdout! : 'pipe', 'pipe', 'pipe'] })
        : input.format === 'directory'
          ? spawn('tar', ['-t'], { stdio: ['pipe', 'pipe', 'pipe'] })
          : undefined;
    head?.stdout?.destroy();
    let listing = '';
    // The start of what the archive says about itself (TOC listing, or the SQL / tar head): extensions are named there.
    let headText = '';
    const keepHead = (text: string) => {
      if (headText.length < HEAD_CHARS) headText += text.slice(0, HEAD_CHARS - headText.length);
    };
    const readerTail = new StderrTail();
    if (reader) {
      kills.push(() => reader.kill('SIGKILL'));
      reader.stdout!.setEncoding('utf8');
      reader.stdout!.on('data', (s: string) => {
        listing = (listing + s).slice(-1_000_000);
        if (input.format === 'custom') keepHead(s);
      });
      readerTail.attach(reader.stderr);
    }
    const count = (chunk: Buffer) => {
      rawBytes += chunk.length;
      if (input.format !== 'custom' && headText.length < HEAD_CHARS) keepHead(chunk.toString('utf8'));
      if (input.format === 'plain') tail = Buffer.concat([tail, chunk]).subarray(-256);
    };
    try {
      if (head && localFile && hashed instanceof FileDigest) {
        [rawBytes] = await Promise.all([
          zstdTest(localFile, head, kills),
          hashed.read(localFile, ctx.cancellationSignal),
        ]);
      } else if (head && source) {
        rawBytes = await zstdTest(source, head, kills);
      } else if (source) {
        const unpacked = decompress(input.compression, source);
        kills.push(() => unpacked.kill());
        const sink = reader
          ? teeToChildren([reader], count)
          : new Writable({
              write(chunk: Buffer, _enc, done) {
                count(chunk);
                done();
              },
            });
        await pipeline(unpacked.stream, sink);
        await unpacked.done;
      }
    } catch (err) {
      if (ctx.cancellationSignal.aborted) throw new CancelledFailure('verification cancelled');
      throw failure(
        FailureType.IntegrityCheckFailed,
        `backup ${input.backupId}: ${where} does not decompress (${input.compression}): ${(err as Error).message}`,
      );
    }
    if (hashed.bytes !== input.sizeBytes) {
      throw failure(
        FailureType.IntegrityCheckFailed,
        `backup ${input.backupId}: ${where} is ${hashed.bytes} bytes, expected ${input.sizeBytes}`,
      );
    }
    const sha = hashed.digest();
    if (sha !== input.sha256) {
      throw failure(
        FailureType.IntegrityCheckFailed,
        `backup ${input.backupId}: ${where} has SHA-256 ${sha}, expected ${input.sha256}`,
      );
    }
    const checks = [
      `size ${hashed.bytes} B + sha256`,
      `${input.compression} stream to the end (${rawBytes} B)`,
    ];
    if (reader) {
      const { code } = await exitOf(reader);
      if (code !== 0) {
        const tool = input.format === 'custom' ? 'pg_restore --list' : 'tar -t';
        throw failure(
          FailureType.IntegrityCheckFailed,
          `backup ${input.backupId}: ${tool} of ${where} failed (exit ${code}): ${readerTail.toString()}`,
        );
      }
      if (input.format === 'custom') {
        const entries = listing.split('\n').filter((l) => /^\d+;/.test(l)).length;
        checks.push(`pg_restore --list (${entries} entries)`);
      } else {
        if (!/(^|\n)\.\/toc\.dat(\n|$)/.test(listing)) {
          throw failure(
            FailureType.IntegrityCheckFailed,
            `backup ${input.backupId}: ${where} has no toc.dat: not a pg_dump directory archive`,
          );
        }
        checks.push('tar -t with toc.dat');
      }
    } else {
      if (!tail.toString('utf8').includes(PLAIN_END_MARK)) {
        throw failure(
          FailureType.IntegrityCheckFailed,
          `backup ${input.backupId}: ${where} does not end with "${PLAIN_END_MARK}": the dump is truncated`,
        );
      }
      checks.push('plain dump end marker');
    }
    return { checks: checks.join(', '), rawBytes, head: headText };
  } finally {
    clearInterval(beat);
    ctx.cancellationSignal.removeEventListener('abort', onCancel);
    onCancel();
    await store.close();
  }
}
