import { spawn } from 'node:child_process';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Context, CancelledFailure } from '@temporalio/activity';
import { type BackupCompression, type BackupFormat, backupFileKey } from '../../common/backup';
import { FailureType, failure } from '../../common/failures';
import { createBackupStore } from '../storage';
import type { StorageSettings } from '../storage/types';
import { decompress, exitOf, HashTap, StderrTail } from './dump-pipeline';

export interface ArchiveCheckInput {
  readonly database: string;
  readonly backupId: string;
  readonly file: string;
  readonly format: BackupFormat;
  readonly compression: BackupCompression;
  readonly sizeBytes: number;
  readonly sha256: string;
}

/** pg_dump's last line of a complete plain dump. */
const PLAIN_END_MARK = '-- PostgreSQL database dump complete';

/**
 * Feeds a child's stdin until it closes it (pg_restore --list reads only the TOC, tar -t may stop
 * early) and keeps reading to the end, so the whole stream is proven decodable.
 */
function teeToChild(child: ReturnType<typeof spawn>, onChunk: (chunk: Buffer) => void): Writable {
  let open = true;
  child.stdin!.on('error', () => (open = false));
  child.stdin!.on('close', () => (open = false));
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      onChunk(chunk);
      if (open && child.stdin!.writable) {
        if (!child.stdin!.write(chunk)) {
          const go = () => {
            child.stdin!.off('drain', go);
            child.stdin!.off('close', go);
            done();
          };
          child.stdin!.on('drain', go);
          child.stdin!.on('close', go);
          return;
        }
      }
      done();
    },
    final(done) {
      if (open) child.stdin!.end();
      done();
    },
  });
}

/** Re-reads a stored archive: size, SHA-256, decompression to the end, and the format's own reader. */
export async function checkStoredArchive(
  storage: StorageSettings,
  pgRestorePath: string,
  input: ArchiveCheckInput,
): Promise<{ checks: string }> {
  const ctx = Context.current();
  const store = createBackupStore(storage);
  const key = backupFileKey(input.database, input.backupId, input.file);
  const where = store.describe(key);
  const hashed = new HashTap();
  const kills: (() => void)[] = [];
  const onCancel = () => kills.forEach((k) => k());
  ctx.cancellationSignal.addEventListener('abort', onCancel);
  const beat = setInterval(() => ctx.heartbeat({ phase: 'verifying', bytes: hashed.bytes }), 3000);
  try {
    const source: Readable = (await store.get(key)).pipe(hashed);
    const unpacked = decompress(input.compression, source);
    kills.push(() => unpacked.kill());
    let rawBytes = 0;
    let tail = Buffer.alloc(0);
    const reader =
      input.format === 'custom'
        ? spawn(pgRestorePath, ['--list'], { stdio: ['pipe', 'pipe', 'pipe'] })
        : input.format === 'directory'
          ? spawn('tar', ['-t'], { stdio: ['pipe', 'pipe', 'pipe'] })
          : undefined;
    let listing = '';
    const readerTail = new StderrTail();
    if (reader) {
      kills.push(() => reader.kill('SIGKILL'));
      reader.stdout.setEncoding('utf8');
      reader.stdout.on('data', (s: string) => (listing = (listing + s).slice(-1_000_000)));
      readerTail.attach(reader.stderr);
    }
    const count = (chunk: Buffer) => {
      rawBytes += chunk.length;
      if (input.format === 'plain') tail = Buffer.concat([tail, chunk]).subarray(-256);
    };
    const sink = reader
      ? teeToChild(reader, count)
      : new Writable({
          write(chunk: Buffer, _enc, done) {
            count(chunk);
            done();
          },
        });
    try {
      await pipeline(unpacked.stream, sink);
      await unpacked.done;
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
    return { checks: checks.join(', ') };
  } finally {
    clearInterval(beat);
    ctx.cancellationSignal.removeEventListener('abort', onCancel);
    onCancel();
    await store.close();
  }
}
