import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { PassThrough, Transform, Writable, type Readable } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import type { BackupCompression } from '../../common/backup';
import { toolEnv } from './binaries';

/** Keeps the last `limit` characters of a child's stderr for the error message (never mixed into data). */
export class StderrTail {
  private text = '';
  constructor(private readonly limit = 2000) {}
  attach(stream: Readable | null | undefined, onLine?: (line: string) => void): void {
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      this.text = (this.text + chunk).slice(-this.limit);
      if (onLine) for (const line of chunk.split('\n')) if (line.trim()) onLine(line.trim());
    });
  }
  toString(): string {
    return this.text.trim().replace(/\s+/g, ' ');
  }
}

/** Exit of a child: resolves with code/signal, never rejects. */
export function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null)
      resolve({ code: child.exitCode, signal: child.signalCode });
    else {
      child.once('close', (code, signal) => resolve({ code, signal }));
      child.once('error', () => resolve({ code: -1, signal: null }));
    }
  });
}

/** SHA-256 and byte count of everything that passes. */
export class HashTap extends Transform implements Digested {
  private readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(
    chunk: Buffer,
    _enc: BufferEncoding,
    done: (err?: Error | null, data?: Buffer) => void,
  ): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }
  digest(): string {
    return this.hash.digest('hex');
  }
}

/** Size and SHA-256 of something read: a HashTap that saw a stream, or a FileDigest of a file. */
export interface Digested {
  readonly bytes: number;
  digest(): string;
}

const FILE_READ_CHUNK = 1 << 20;

/**
 * SHA-256 of a local file, read into one reused buffer: no garbage per chunk (a stream's fresh
 * Buffers grow the worker's RSS until a GC), and no JS pipe in the way. `bytes` grows as it reads.
 */
export class FileDigest implements Digested {
  private readonly hash = createHash('sha256');
  private hex: string | undefined;
  bytes = 0;

  async read(file: string, signal?: AbortSignal): Promise<this> {
    const handle = await open(file, 'r');
    const buffer = Buffer.allocUnsafe(FILE_READ_CHUNK);
    try {
      for (;;) {
        signal?.throwIfAborted();
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) break;
        this.hash.update(buffer.subarray(0, bytesRead));
        this.bytes += bytesRead;
      }
    } finally {
      await handle.close();
    }
    this.hex = this.hash.digest('hex');
    return this;
  }

  digest(): string {
    if (this.hex === undefined) throw new Error('FileDigest.digest() called before read() finished');
    return this.hex;
  }
}

/**
 * Holds back end-of-stream until `check` resolves: a store only completes the object when the
 * producers (pg_dump, zstd) exited 0; if `check` rejects, the stream errors and the store aborts.
 */
export function gateOnSuccess(check: () => Promise<void>): Transform {
  return new Transform({
    transform(chunk, _enc, done) {
      done(null, chunk);
    },
    flush(done) {
      check().then(
        () => done(),
        (err: Error) => done(err),
      );
    },
  });
}

export interface Compressor {
  readonly stream: Readable;
  /** Resolves when the compressor finished; rejects with a message on failure. */
  readonly done: Promise<void>;
  kill(): void;
}

const ZSTD_LEVEL = '-1';
const GZIP_LEVEL = 6;

/**
 * Compresses `input`. zstd runs as a child process (pg_dump has no zstd here); gzip runs in Node's
 * zlib (libuv thread pool). `handOver`: `input` is another child's stdout pipe, which zstd then
 * reads directly (no copy through Node).
 */
export function compress(
  compression: BackupCompression,
  input: Readable,
  opts: { handOver?: boolean } = {},
): Compressor {
  if (compression === 'zstd') {
    const handOver = opts.handOver === true;
    const child = spawn('zstd', [ZSTD_LEVEL, '-q', '-c'], {
      env: toolEnv(),
      stdio: [handOver ? input : 'pipe', 'pipe', 'pipe'],
    });
    // Our end of the pipe closes: if zstd dies, the producer gets EPIPE instead of blocking forever.
    if (handOver) input.destroy();
    else {
      child.stdin!.on('error', () => undefined);
      input.pipe(child.stdin!);
      input.once('error', () => child.kill('SIGKILL'));
    }
    const tail = new StderrTail();
    tail.attach(child.stderr);
    const done = exitOf(child).then(({ code, signal }) => {
      if (code !== 0)
        throw new Error(`zstd ${signal ? `killed by ${signal}` : `exited ${code}`}: ${tail.toString()}`);
    });
    // Callers await `done` only on their success path; an earlier failure must not leave it unhandled.
    done.catch(() => undefined);
    return { stream: child.stdout!, done, kill: () => child.kill('SIGKILL') };
  }
  const out = compression === 'gzip' ? createGzip({ level: GZIP_LEVEL }) : new PassThrough();
  const done = new Promise<void>((resolve, reject) => {
    out.once('end', resolve);
    out.once('error', reject);
  });
  done.catch(() => undefined);
  input.pipe(out);
  input.once('error', (err) => out.destroy(err));
  return { stream: out, done, kill: () => out.destroy() };
}

export interface Decompressor {
  readonly stream: Readable;
  readonly done: Promise<void>;
  kill(): void;
}

/** The reverse of `compress`, from a stream. */
export function decompress(compression: BackupCompression, input: Readable): Decompressor {
  if (compression === 'zstd') {
    const child = spawn('zstd', ['-d', '-q', '-c'], { env: toolEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    const tail = new StderrTail();
    tail.attach(child.stderr);
    input.pipe(child.stdin);
    child.stdin.on('error', () => undefined);
    const done = exitOf(child).then(({ code, signal }) => {
      if (code !== 0)
        throw new Error(`zstd -d ${signal ? `killed by ${signal}` : `exited ${code}`}: ${tail.toString()}`);
    });
    done.catch(() => undefined);
    return { stream: child.stdout, done, kill: () => child.kill('SIGKILL') };
  }
  const out = compression === 'gzip' ? createGunzip() : new PassThrough();
  const done = new Promise<void>((resolve, reject) => {
    out.once('end', resolve);
    out.once('error', reject);
    input.once('error', reject);
  });
  done.catch(() => undefined);
  input.pipe(out);
  return { stream: out, done, kill: () => out.destroy() };
}

/**
 * Feeds each target while it accepts (tar -t may stop early, a failed decoder closes its input)
 * and keeps reading to the end, so the stream is hashed whole whatever the readers do.
 */
export function teeTo(targets: Writable[], onChunk: (chunk: Buffer) => void): Writable {
  const open = targets.map(() => true);
  targets.forEach((t, i) => {
    t.on('error', () => (open[i] = false));
    t.on('close', () => (open[i] = false));
  });
  const writeTo = (i: number, chunk: Buffer) =>
    new Promise<void>((resolve) => {
      const t = targets[i]!;
      if (!open[i] || !t.writable || t.write(chunk)) return resolve();
      const go = () => {
        t.off('drain', go);
        t.off('close', go);
        resolve();
      };
      t.on('drain', go);
      t.on('close', go);
    });
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      onChunk(chunk);
      Promise.all(targets.map((_, i) => writeTo(i, chunk))).then(() => done(), done);
    },
    final(done) {
      targets.forEach((t, i) => open[i] && t.end());
      done();
    },
  });
}
