/**
 * The archive as a restore uses it: read once from the store, hashed as it passes, decompressed
 * into the scratch folder (a plain dump also scanned line by line, restrict-scan.ts), and proven
 * (size and SHA-256 against the manifest, then the decoder, then the scan) before any PostgreSQL
 * tool reads the result. The bytes decompressed are exactly the bytes hashed: the stored object is
 * never read twice, so one replaced or rewritten between two reads cannot slip through.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, stat } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { type BackupManifest, backupFileKey } from '../../../common/backup';
import { FailureType, failure, failureTypeOf } from '../../../common/failures';
import type { AgeSettings, BackupStore } from '../../storage';
import { ageDecrypt } from '../age';
import { toolEnv } from '../binaries';
import { exitOf, StderrTail } from '../dump-pipeline';
import { PlainDumpText } from './plain-text';
import { outsideCause } from './run';
import { assertDigest } from './source';

export type Unpackable = Pick<
  BackupManifest,
  | 'id'
  | 'database'
  | 'file'
  | 'format'
  | 'compression'
  | 'sizeBytes'
  | 'sha256'
  | 'rawBytes'
  | 'adopted'
  | 'encryption'
>;

const READ_CHUNK = 1 << 20;

/** The stored archive's bytes, in order; `reused`: a chunk is overwritten two reads later. */
interface Source {
  readonly chunks: AsyncIterable<Buffer>;
  readonly reused: boolean;
}

/** Opens the archive after checking its stored size against the manifest (before reading a byte). */
async function openArchive(store: BackupStore, manifest: Unpackable): Promise<Source> {
  const key = backupFileKey(manifest.database, manifest.id, manifest.file);
  const head = await store.head(key);
  const broken = (what: string) =>
    failure(
      FailureType.IntegrityCheckFailed,
      `backup ${manifest.id}: archive ${store.describe(key)} ${what}`,
    );
  if (!head) throw broken('is missing');
  if (head.size !== manifest.sizeBytes)
    throw broken(`is ${head.size} bytes, the manifest says ${manifest.sizeBytes} (truncated or replaced)`);
  if (!store.localFile) return { chunks: (await store.get(key)) as AsyncIterable<Buffer>, reused: false };
  return { chunks: readFile(await store.localFile(key)), reused: true };
}

/**
 * A local file in two reused buffers, taken in turn: no garbage per chunk (a stream's fresh
 * Buffers grow the RSS), and the next chunk is read while the previous one is still being written.
 */
async function* readFile(file: string): AsyncGenerator<Buffer> {
  const handle = await open(file, 'r');
  const buffers = [Buffer.allocUnsafe(READ_CHUNK), Buffer.allocUnsafe(READ_CHUNK)];
  try {
    for (let n = 0; ; n++) {
      const buffer = buffers[n % 2]!;
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

/** How a decoder ended: an error is kept, not thrown, so the digest is judged first. */
interface Decoded {
  readonly error?: Error;
  /** The error lies outside the archive (a full scratch folder, a killed decoder): never a verdict. */
  readonly outside?: string;
  /** The worker cannot decrypt it (no identity, or not one of its recipients'): never a verdict. */
  readonly misconfigured?: boolean;
}

interface Decoder {
  readonly input: Writable;
  /** The decoder keeps references to the chunks written (a Node transform): they must not be reused. */
  readonly holdsChunks: boolean;
  readonly done: Promise<Decoded>;
}

const settle = (
  p: Promise<unknown>,
  outside: (err: NodeJS.ErrnoException) => string | undefined,
): Promise<Decoded> =>
  p.then(
    () => ({}),
    (err: Error) => ({ error: err, outside: outside(err) }),
  );

/**
 * Decompresses what is written to `input` into `out`; a plain dump's text passes `text` on its
 * way (scanned, and for an adopted backup filtered and locked). zstd runs as a child, writing
 * `out` itself unless the text must pass through Node.
 */
function decoder(
  manifest: Unpackable,
  out: string,
  scanner: PlainDumpText | undefined,
  kills: (() => void)[],
): Decoder {
  const scanTap = () => {
    let begun = false;
    return new Transform({
      transform(chunk: Buffer, _enc, done) {
        const head = begun ? [] : [scanner!.begin()];
        begun = true;
        done(null, Buffer.concat([...head, scanner!.write(chunk)]));
      },
      flush(done) {
        done(null, Buffer.concat([begun ? Buffer.alloc(0) : scanner!.begin(), scanner!.end()]));
      },
    });
  };
  const written = (source: Readable) =>
    pipeline([source, ...(scanner ? [scanTap()] : []), createWriteStream(out)]);
  // Writing the scratch file fails for reasons of the folder (full, not writable), never the archive's.
  const fileFault = (err: NodeJS.ErrnoException) =>
    err.syscall === undefined
      ? undefined
      : (outsideCause(err.message) ?? `the scratch file could not be written (${err.code ?? err.message})`);
  if (manifest.compression !== 'zstd') {
    const input = manifest.compression === 'gzip' ? createGunzip() : new PassThrough();
    kills.push(() => input.destroy());
    return { input, holdsChunks: true, done: settle(written(input), fileFault) };
  }
  const child = spawn('zstd', ['-d', '-q', '-f', ...(scanner ? ['-c'] : ['-o', out])], {
    env: toolEnv(),
    stdio: ['pipe', scanner ? 'pipe' : 'ignore', 'pipe'],
  });
  kills.push(() => child.kill('SIGKILL'));
  const tail = new StderrTail();
  tail.attach(child.stderr);
  const input = child.stdin!;
  input.on('error', () => undefined);
  const exited = exitOf(child).then(({ code, signal }) => {
    if (code === 0) return {};
    const error = new Error(
      `zstd -d of the archive into ${out} ${signal ? `killed by ${signal}` : `exited ${code}`}: ${tail.toString()}`,
    );
    return { error, outside: outsideCause(tail.toString(), signal) };
  });
  if (!scanner) return { input, holdsChunks: false, done: exited };
  const file = settle(written(child.stdout!), fileFault);
  // The file's failure (e.g. a full folder) is the cause; zstd then only lost its reader.
  const done = Promise.all([file, exited]).then(([f, z]) => (f.error ? f : z));
  return { input, holdsChunks: false, done };
}

/**
 * An encrypted archive (BackupManifest.encryption): the stored bytes go through `age --decrypt`
 * first, its output into `inner`. A missing or wrong identity comes out as its own Misconfigured
 * failure (the backup may be fine), not as an archive that does not decompress.
 */
function decrypting(
  inner: Decoder,
  manifest: Unpackable,
  age: AgeSettings | undefined,
  kills: (() => void)[],
): Decoder {
  const d = ageDecrypt(age, manifest.id, manifest.encryption!.recipients);
  kills.push(() => d.kill());
  d.output.pipe(inner.input);
  d.output.once('error', () => inner.input.destroy());
  const decrypted = d.done.then(
    () => undefined,
    (err: Error) => err,
  );
  const done = Promise.all([decrypted, inner.done]).then(([dErr, decoded]): Decoded => {
    if (dErr && failureTypeOf(dErr) === FailureType.Misconfigured)
      return { error: dErr, misconfigured: true };
    return dErr ? { error: dErr } : decoded;
  });
  return { input: d.input!, holdsChunks: false, done };
}

/** Writes `chunk` unless `target` has closed (a decoder that gave up); resolves once it is taken. */
function offer(target: Writable, chunk: Buffer): Promise<void> {
  if (target.destroyed || target.writableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    const go = () => {
      target.off('close', go);
      resolve();
    };
    target.once('close', go);
    target.write(chunk, go);
  });
}

/**
 * Unpacks the stored archive of `manifest` into the file `out` and proves it (see the top of this
 * file). IntegrityCheckFailed names what is wrong with the archive; Unavailable a cause outside it
 * (a full scratch folder). `read.bytes` counts the stored bytes read, for heartbeats.
 */
export async function unpackProven(
  store: BackupStore,
  manifest: Unpackable,
  out: string,
  kills: (() => void)[],
  read: { bytes: number },
  signal?: AbortSignal,
  age?: AgeSettings,
): Promise<void> {
  await mkdir(path.dirname(out), { recursive: true });
  const source = await openArchive(store, manifest);
  const scanner = manifest.format === 'plain' ? new PlainDumpText(manifest) : undefined;
  const plainDecode = decoder(manifest, out, scanner, kills);
  const decode = manifest.encryption ? decrypting(plainDecode, manifest, age, kills) : plainDecode;
  const hash = createHash('sha256');
  // One chunk in flight to the decoder while the next is read and hashed; a reused buffer comes
  // back only after its write was taken (awaited before the next write).
  let inFlight = Promise.resolve();
  for await (const chunk of source.chunks) {
    signal?.throwIfAborted();
    hash.update(chunk);
    read.bytes += chunk.length;
    await inFlight;
    // Read and hashed to the end even after the decoder gave up: the digest is the first verdict.
    inFlight = offer(decode.input, source.reused && decode.holdsChunks ? Buffer.from(chunk) : chunk);
  }
  await inFlight;
  if (!decode.input.destroyed) decode.input.end();
  const decoded = await decode.done;
  const digest = hash.digest('hex');
  assertDigest(manifest, { bytes: read.bytes, digest: () => digest });
  if (decoded.misconfigured) throw decoded.error!;
  // The decoder's own message first (zstd's names the file and its error): what an operator looks up.
  if (decoded.outside)
    throw failure(
      FailureType.Unavailable,
      `${decoded.error!.message} (backup ${manifest.id}: ${decoded.outside}, not a fault of the backup; it is retried. If the scratch folder is full or not writable, free space in it or point DBOPS_SCRATCH_DIR at another folder)`,
    );
  if (decoded.error)
    throw failure(
      FailureType.IntegrityCheckFailed,
      `backup ${manifest.id}: the archive matches its digest but does not decompress (${manifest.compression}): ${decoded.error.message}; restore another backup ("dbops backups list")`,
    );
  const problem = scanner?.problem();
  if (problem !== undefined)
    throw failure(
      FailureType.IntegrityCheckFailed,
      `backup ${manifest.id}: the plain dump ${problem}; psql was not started. It is not pg_dump's own output (or pg_dump is older than the \\restrict fix): restore another backup ("dbops backups list"), or take a new one with a current pg_dump`,
    );
  // A plain dump's text may have been filtered and locked on its way: its count is what was decompressed.
  const unpacked = scanner ? scanner.rawBytes : (await stat(out)).size;
  if (manifest.rawBytes > 0 && unpacked !== manifest.rawBytes)
    throw failure(
      FailureType.IntegrityCheckFailed,
      `backup ${manifest.id}: the archive decompresses to ${unpacked} bytes, the manifest says ${manifest.rawBytes}; restore another backup ("dbops backups list")`,
    );
}
