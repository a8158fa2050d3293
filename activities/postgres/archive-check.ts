import { spawn } from 'node:child_process';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Context } from '@temporalio/activity';
import { type BackupCompression, type BackupFormat, backupFileKey } from '../../common/backup';
import { FailureType, failure } from '../../common/failures';
import { createBackupStore } from '../storage';
import type { StorageSettings } from '../storage/types';
import { decompress, exitOf, FileDigest, HashTap, StderrTail } from './dump-pipeline';
import { withProgress } from './progress';

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
const HEARTBEAT_MS = 3000;

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
  const store = createBackupStore(storage);
  const key = backupFileKey(input.database, input.backupId, input.file);
  // custom+zstd: zstd -t proves the whole stream; only the head is decompressed, for pg_restore --list.
  const testWholeZstd = input.format === 'custom' && input.compression === 'zstd';
  try {
    // A local file is read by zstd itself and hashed beside it: no Node stream in the way.
    const localFile = testWholeZstd && store.localFile ? await store.localFile(key) : undefined;
    const hashed = localFile ? new FileDigest() : new HashTap();
    const heartbeats = { everyMs: HEARTBEAT_MS, cancelled: 'verification cancelled' };
    return await withProgress(
      heartbeats,
      () => ({ phase: 'verifying', bytes: hashed.bytes }),
      async (kills) => {
        const source = hashed instanceof HashTap ? (await store.get(key)).pipe(hashed) : undefined;
        const r = startReaders(input, pgRestorePath, testWholeZstd, localFile, kills);
        let rawBytes: number;
        try {
          rawBytes = await readToEnd(input, r, source, localFile, hashed, kills);
        } catch (err) {
          throw failure(
            FailureType.IntegrityCheckFailed,
            `backup ${input.backupId}: ${store.describe(key)} does not decompress (${input.compression}): ${(err as Error).message}`,
          );
        }
        const checks = await provenChecks(input, store.describe(key), hashed, rawBytes, r);
        return { checks: checks.join(', '), rawBytes, head: r.headText };
      },
    );
  } finally {
    await store.close();
  }
}

/** The children that read the archive, and what they and the stream have shown so far. */
interface Readers {
  /** zstd -d of the archive's start, for pg_restore --list (custom+zstd only). */
  readonly head: ReturnType<typeof spawn> | undefined;
  /** pg_restore --list (custom) or tar -t (directory); none for plain. */
  readonly reader: ReturnType<typeof spawn> | undefined;
  readonly readerTail: StderrTail;
  /** The end of the reader's output. */
  listing: string;
  /** The start of what the archive says about itself (TOC listing, or the SQL / tar head): extensions are named there. */
  headText: string;
  /** The last bytes of a plain dump. */
  tail: Buffer;
  /** Bytes of the decompressed stream counted so far. */
  rawBytes: number;
  /** Counts (and keeps the head and tail of) the decompressed stream. */
  readonly count: (chunk: Buffer) => void;
}

function startReaders(
  input: ArchiveCheckInput,
  pgRestorePath: string,
  testWholeZstd: boolean,
  localFile: string | undefined,
  kills: (() => void)[],
): Readers {
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
  const r: Readers = {
    head,
    reader,
    readerTail: new StderrTail(),
    listing: '',
    headText: '',
    tail: Buffer.alloc(0),
    rawBytes: 0,
    count: (chunk) => {
      r.rawBytes += chunk.length;
      if (input.format !== 'custom' && r.headText.length < HEAD_CHARS) keepHead(chunk.toString('utf8'));
      if (input.format === 'plain') r.tail = Buffer.concat([r.tail, chunk]).subarray(-256);
    },
  };
  const keepHead = (text: string) => {
    if (r.headText.length < HEAD_CHARS) r.headText += text.slice(0, HEAD_CHARS - r.headText.length);
  };
  if (reader) {
    kills.push(() => reader.kill('SIGKILL'));
    reader.stdout!.setEncoding('utf8');
    reader.stdout!.on('data', (s: string) => {
      r.listing = (r.listing + s).slice(-1_000_000);
      if (input.format === 'custom') keepHead(s);
    });
    r.readerTail.attach(reader.stderr);
  }
  return r;
}

/** Reads the archive to its end (hashing it), through the readers; returns the uncompressed size. */
async function readToEnd(
  input: ArchiveCheckInput,
  r: Readers,
  source: Readable | undefined,
  localFile: string | undefined,
  hashed: HashTap | FileDigest,
  kills: (() => void)[],
): Promise<number> {
  if (r.head && localFile && hashed instanceof FileDigest) {
    const [rawBytes] = await Promise.all([
      zstdTest(localFile, r.head, kills),
      hashed.read(localFile, Context.current().cancellationSignal),
    ]);
    return rawBytes;
  }
  if (r.head && source) return zstdTest(source, r.head, kills);
  if (source) {
    const unpacked = decompress(input.compression, source);
    kills.push(() => unpacked.kill());
    const sink = r.reader
      ? teeToChildren([r.reader], r.count)
      : new Writable({
          write(chunk: Buffer, _enc, done) {
            r.count(chunk);
            done();
          },
        });
    await pipeline(unpacked.stream, sink);
    await unpacked.done;
  }
  return r.rawBytes;
}

/** The archive's proof: size and SHA-256 as the manifest says, and its reader's verdict; else IntegrityCheckFailed. */
async function provenChecks(
  input: ArchiveCheckInput,
  where: string,
  hashed: HashTap | FileDigest,
  rawBytes: number,
  r: Readers,
): Promise<string[]> {
  const broken = (what: string) =>
    failure(FailureType.IntegrityCheckFailed, `backup ${input.backupId}: ${where} ${what}`);
  if (hashed.bytes !== input.sizeBytes) throw broken(`is ${hashed.bytes} bytes, expected ${input.sizeBytes}`);
  const sha = hashed.digest();
  if (sha !== input.sha256) throw broken(`has SHA-256 ${sha}, expected ${input.sha256}`);
  const checks = [
    `size ${hashed.bytes} B + sha256`,
    `${input.compression} stream to the end (${rawBytes} B)`,
  ];
  if (!r.reader) {
    if (!r.tail.toString('utf8').includes(PLAIN_END_MARK))
      throw broken(`does not end with "${PLAIN_END_MARK}": the dump is truncated`);
    return [...checks, 'plain dump end marker'];
  }
  const { code } = await exitOf(r.reader);
  if (code !== 0) {
    const tool = input.format === 'custom' ? 'pg_restore --list' : 'tar -t';
    throw failure(
      FailureType.IntegrityCheckFailed,
      `backup ${input.backupId}: ${tool} of ${where} failed (exit ${code}): ${r.readerTail.toString()}`,
    );
  }
  if (input.format === 'custom') {
    const entries = r.listing.split('\n').filter((l) => /^\d+;/.test(l)).length;
    return [...checks, `pg_restore --list (${entries} entries)`];
  }
  if (!/(^|\n)\.\/toc\.dat(\n|$)/.test(r.listing))
    throw broken('has no toc.dat: not a pg_dump directory archive');
  return [...checks, 'tar -t with toc.dat'];
}
