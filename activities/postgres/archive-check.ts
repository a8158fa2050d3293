import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { PassThrough, type Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Context } from '@temporalio/activity';
import type { AdoptedFrom } from '../../common/adopted';
import { AGE_SUFFIX, type BackupCompression, type BackupFormat, backupFileKey } from '../../common/backup';
import { FailureType, failure, failureTypeOf } from '../../common/failures';
import { ageDecrypt, type Decryptor } from './age';
import { checkCiphertext } from './archive-ciphertext';
import { createBackupStore } from '../storage';
import type { BackupStore, StorageSettings } from '../storage/types';
import { toolEnv } from './binaries';
import { decompress, exitOf, FileDigest, HashTap, StderrTail, teeTo } from './dump-pipeline';
import { withProgress } from './progress';
import { PlainDumpText } from './restore/plain-text';

export interface ArchiveCheckInput {
  readonly database: string;
  readonly backupId: string;
  readonly file: string;
  readonly format: BackupFormat;
  readonly compression: BackupCompression;
  readonly sizeBytes: number;
  readonly sha256: string;
  /** An adopted spec backup: its plain text is filtered and locked as a restore reads it. */
  readonly adopted?: AdoptedFrom;
}

const HEAD_CHARS = 1 << 20;
const HEARTBEAT_MS = 3000;

/** pg_dump's last line of a complete plain dump. */
const PLAIN_END_MARK = '-- PostgreSQL database dump complete';
/** The first bytes of every pg_dump custom archive (pg_backup_archiver.c WriteHead). */
const CUSTOM_MAGIC = Buffer.from('PGDMP');

/**
 * Re-reads a stored archive and proves it, in an order that lets nothing unproven reach a
 * PostgreSQL tool: the stored size (before reading a byte), then one read to the end for SHA-256
 * and decompression, then the digest, and only then the format's own reader (`pg_restore --list`
 * after the PGDMP signature, or the plain dump's end marker and its \restrict lock
 * (restore/restrict-scan.ts), or tar's toc.dat).
 *
 * This check is evidence for a plan, a verification's verdict and a backup's manifest; it
 * restores nothing, so it streams instead of unpacking to a proven local file as a restore does
 * (restore/unpack.ts, which proves its own bytes again). Only zstd -t, tar -t and `pg_restore
 * --list` see the archive here, and none of them executes anything: `--list` prints the table of
 * contents without connecting to a server. It reads the archive a second time, after the digest
 * of the first read was proven: an object replaced in between could change what the plan lists
 * (extensions, entry count), never what a restore runs.
 */
export async function checkStoredArchive(
  storage: StorageSettings,
  pgRestorePath: string,
  input: ArchiveCheckInput,
  /** The backup's own check: an archive this worker encrypts but cannot decrypt is checked as ciphertext. */
  opts: { readonly ciphertextWithoutIdentity?: boolean } = {},
): Promise<{ checks: string; rawBytes: number; head: string }> {
  const store = createBackupStore(storage);
  const key = backupFileKey(input.database, input.backupId, input.file);
  const broken = (what: string) =>
    failure(FailureType.IntegrityCheckFailed, `backup ${input.backupId}: ${store.describe(key)} ${what}`);
  try {
    const stored = await store.head(key);
    if (!stored) throw broken('is missing');
    if (stored.size !== input.sizeBytes)
      throw broken(`is ${stored.size} bytes, the manifest says ${input.sizeBytes} (truncated or replaced)`);
    const encrypted = input.file.endsWith(AGE_SUFFIX);
    if (encrypted && !storage.age?.identityFile && opts.ciphertextWithoutIdentity)
      return await checkCiphertext(store, key, input, broken);
    // custom+zstd from a local folder: zstd reads the file itself, hashed beside it (no Node stream).
    const localFile =
      input.format === 'custom' && input.compression === 'zstd' && store.localFile
        ? await store.localFile(key)
        : undefined;
    const decrypt = encrypted
      ? (file?: string) => ageDecrypt(storage.age, input.backupId, ['its recipients'], file)
      : undefined;
    const whole = new ReadWhole(input, localFile, decrypt);
    const heartbeats = { everyMs: HEARTBEAT_MS, cancelled: 'verification cancelled' };
    return await withProgress(
      heartbeats,
      () => ({ phase: 'verifying', bytes: whole.hashed.bytes }),
      async (kills) => {
        await whole.read(store, key, kills);
        if (whole.hashed.bytes !== input.sizeBytes)
          throw broken(`read ${whole.hashed.bytes} bytes, expected ${input.sizeBytes}`);
        const sha = whole.hashed.digest();
        // The digest before the decoder's verdict: bytes that are not the backup's say so first.
        if (sha !== input.sha256) throw broken(`has SHA-256 ${sha}, expected ${input.sha256}`);
        // Not decryptable here (no identity, or another one): the worker's fault, never the archive's.
        if (failureTypeOf(whole.decodeError) === FailureType.Misconfigured) throw whole.decodeError!;
        if (whole.decodeError)
          throw broken(`does not decompress (${input.compression}): ${whole.decodeError.message}`);
        // A plain dump's own verdicts: complete (end marker), then psql's lock over all of it.
        const checks = [
          `size ${whole.hashed.bytes} B + sha256`,
          `${input.compression} stream to the end (${whole.rawBytes} B)`,
        ];
        const open = async (): Promise<Readable> => {
          if (decrypt) {
            // age reads a local archive itself; a stored one is written to it.
            const d = decrypt(localFile);
            kills.push(() => d.kill());
            if (!localFile) (await store.get(key)).pipe(d.input!);
            return d.output;
          }
          return localFile ? createReadStream(localFile) : store.get(key);
        };
        const own =
          input.format === 'plain'
            ? whole.plainEnd(broken)
            : input.format === 'directory'
              ? await whole.tarListing(broken)
              : await listCustomArchive(open, input.compression, pgRestorePath, kills, broken);
        return { checks: [...checks, own.check].join(', '), rawBytes: whole.rawBytes, head: own.head };
      },
    );
  } finally {
    await store.close();
  }
}

/** What the format's own reader proved, and the start of what the archive says about itself (extensions are named there). */
interface OwnCheck {
  readonly check: string;
  readonly head: string;
}

/**
 * One read of the whole archive: SHA-256 and size of the stored bytes, decompression to the end
 * (zstd -t for custom+zstd, else the decoder, counted), tar -t for a directory archive, the head
 * and tail of a plain dump. A decoder failure is kept, not thrown: the digest is judged first.
 */
class ReadWhole {
  readonly hashed: HashTap | FileDigest;
  rawBytes = 0;
  decodeError: Error | undefined;
  /** The start of a plain dump or tar stream: extensions are named there. */
  headText = '';
  /** The last bytes of a plain dump. */
  tail = Buffer.alloc(0);
  /** A plain dump's text as psql would read it, as it decompresses. */
  readonly scanner: PlainDumpText | undefined;
  private tar: { exited: Promise<{ code: number | null }>; listing: string; stderr: StderrTail } | undefined;

  constructor(
    private readonly input: ArchiveCheckInput,
    private readonly localFile: string | undefined,
    /** An encrypted archive: what decrypts the stored bytes before the decoder. */
    private readonly decrypt?: (file?: string) => Decryptor,
  ) {
    this.hashed = localFile ? new FileDigest() : new HashTap();
    this.scanner = input.format === 'plain' ? new PlainDumpText(input) : undefined;
  }

  async read(store: BackupStore, key: string, kills: (() => void)[]): Promise<void> {
    const failed = (err: Error) => ((this.decodeError = err), 0);
    // An encrypted archive: age reads a local file itself, else the stored bytes through Node.
    const d = this.decrypt?.(this.localFile);
    if (d) kills.push(() => d.kill());
    // age's own failure explains the decoder's (its input ended early): it is the one kept.
    const decrypted = d?.done.then(
      () => undefined,
      (err: Error) => err,
    );
    const ageFirst = async () => {
      const err = await decrypted;
      if (err) this.decodeError = err;
    };
    if (this.localFile && this.hashed instanceof FileDigest) {
      // zstd reads the file, or age's output child to child: no archive byte through Node.
      const [tested] = await Promise.all([
        zstdTestSize(d ? d.output : this.localFile, kills).size.catch(failed),
        this.hashed.read(this.localFile, Context.current().cancellationSignal),
      ]);
      this.rawBytes = tested;
      await ageFirst();
      return;
    }
    const source = (await store.get(key)).pipe(this.hashed as HashTap);
    if (this.input.format === 'custom' && this.input.compression === 'zstd') {
      const tester = zstdTestSize(d?.output, kills);
      await pipeline(
        source,
        teeTo([d ? d.input! : tester.stdin!], () => undefined),
      );
      this.rawBytes = await tester.size.catch(failed);
      await ageFirst();
      return;
    }
    if (d) {
      // The decrypted stream into the decoder; the stored bytes into age.
      const decoding = this.decodeStream(d.output, kills).catch(failed);
      await pipeline(
        source,
        teeTo([d.input!], () => undefined),
      );
      await decoding;
      await ageFirst();
      return;
    }
    const input = new PassThrough();
    // A decoder that gave up leaves its input unread: closing it lets the hashing read on.
    const decoding = this.decodeStream(input, kills)
      .catch(failed)
      .finally(() => input.destroy());
    await pipeline(
      source,
      teeTo([input], () => undefined),
    );
    await decoding;
  }

  /** Decompresses `raw` to its end, counting, keeping head and tail, through tar -t for a directory archive. */
  private async decodeStream(raw: Readable, kills: (() => void)[]): Promise<number> {
    const unpacked = decompress(this.input.compression, raw);
    kills.push(() => unpacked.kill());
    const targets: Writable[] = [];
    if (this.input.format === 'directory') {
      const tar = spawn('tar', ['-t'], { env: toolEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
      kills.push(() => tar.kill('SIGKILL'));
      const t = { exited: exitOf(tar), listing: '', stderr: new StderrTail() };
      tar.stdout.setEncoding('utf8');
      tar.stdout.on('data', (s: string) => (t.listing = (t.listing + s).slice(-1_000_000)));
      t.stderr.attach(tar.stderr);
      this.tar = t;
      targets.push(tar.stdin);
    }
    await pipeline(
      unpacked.stream,
      teeTo(targets, (chunk) => this.count(chunk)),
    );
    await unpacked.done;
    return this.rawBytes;
  }

  private count(chunk: Buffer): void {
    if (this.scanner && this.rawBytes === 0) this.scanner.begin();
    this.rawBytes += chunk.length;
    const text = this.scanner ? this.scanner.write(chunk) : chunk;
    if (this.headText.length < HEAD_CHARS)
      this.headText += text.toString('utf8').slice(0, HEAD_CHARS - this.headText.length);
    if (this.scanner) this.tail = Buffer.concat([this.tail, text]).subarray(-256);
  }

  /** A plain dump's proof: pg_dump's last line, and psql's \restrict lock over the whole script. */
  plainEnd(broken: (what: string) => Error): OwnCheck {
    const plain = this.scanner!;
    if (this.rawBytes === 0) plain.begin();
    // With the filter's last held-back bytes (and an added lock's closing line, 79 bytes).
    const tail = Buffer.concat([this.tail, plain.end()]).toString('utf8');
    if (!tail.includes(PLAIN_END_MARK))
      throw broken(`does not end with "${PLAIN_END_MARK}": the dump is truncated or not a plain dump`);
    const problem = plain.problem();
    if (problem !== undefined)
      throw broken(
        `is a plain dump that ${problem}; psql never runs it. Restore another backup ("dbops backups list") or take a new one with a current pg_dump`,
      );
    return { check: 'plain dump end marker, \\restrict over every line', head: this.headText };
  }

  /** A directory archive's proof: tar read it to the end and it holds pg_dump's toc.dat. */
  async tarListing(broken: (what: string) => Error): Promise<OwnCheck> {
    const { code } = await this.tar!.exited;
    if (code !== 0)
      throw broken(`is not a tar stream (tar -t exited ${code}): ${this.tar!.stderr.toString()}`);
    if (!/(^|\n)\.\/toc\.dat(\n|$)/.test(this.tar!.listing))
      throw broken('has no toc.dat: not a pg_dump directory archive');
    return { check: 'tar -t with toc.dat', head: this.headText };
  }
}

/**
 * `zstd -t -v` of a file, of another child's stdout (handed over: read child to child), or of what
 * is written to `stdin`: proves every frame's checksum to the end and reports the decompressed size.
 */
function zstdTestSize(
  source: string | Readable | undefined,
  kills: (() => void)[],
): { stdin: Writable | null; size: Promise<number> } {
  const file = typeof source === 'string' ? source : undefined;
  const stdin: 'ignore' | 'pipe' | Readable = typeof source === 'string' ? 'ignore' : (source ?? 'pipe');
  const tester: ChildProcess = spawn('zstd', ['-t', '-v', ...(file ? ['--', file] : [])], {
    env: toolEnv(),
    stdio: [stdin, 'ignore', 'pipe'],
  });
  // Our end of a handed-over pipe closes: zstd alone reads it.
  if (source && typeof source !== 'string') source.destroy();
  kills.push(() => tester.kill('SIGKILL'));
  const tail = new StderrTail();
  tail.attach(tester.stderr);
  const size = exitOf(tester).then(({ code, signal }) => {
    if (code !== 0)
      throw new Error(`zstd -t ${signal ? `killed by ${signal}` : `exited ${code}`}: ${tail.toString()}`);
    const m = /(\d+) bytes\s*$/.exec(tail.toString());
    if (!m) throw new Error(`zstd -t did not report the decompressed size: ${tail.toString()}`);
    return Number(m[1]);
  });
  return { stdin: tester.stdin, size };
}

/** Resolves with the first `n` bytes (or all, if the stream is shorter) and leaves the stream paused after them. */
function readHead(stream: Readable, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let length = 0;
    const finish = (err?: Error) => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', finish);
      stream.pause();
      if (err) reject(err);
      else resolve(Buffer.concat(parts));
    };
    const onData = (chunk: Buffer) => {
      parts.push(chunk);
      length += chunk.length;
      if (length >= n) finish();
    };
    const onEnd = () => finish();
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', finish);
  });
}

/**
 * `pg_restore --list` of a proven custom archive, read again from its start (pg_restore reads only
 * the table of contents, then the stream is dropped). pg_restore starts only once the decompressed
 * stream begins with PGDMP: anything else is not a pg_dump archive whatever its manifest says.
 */
async function listCustomArchive(
  open: () => Promise<Readable>,
  compression: BackupCompression,
  pgRestorePath: string,
  kills: (() => void)[],
  broken: (what: string) => Error,
): Promise<OwnCheck> {
  const raw = await open();
  const unpacked = decompress(compression, raw);
  const stop = () => {
    unpacked.kill();
    raw.destroy();
  };
  kills.push(stop);
  const head = await readHead(unpacked.stream, CUSTOM_MAGIC.length);
  if (!head.subarray(0, CUSTOM_MAGIC.length).equals(CUSTOM_MAGIC)) {
    stop();
    throw broken(
      `is not a pg_dump custom archive: it starts with ${JSON.stringify(head.subarray(0, 16).toString('latin1'))}, not PGDMP`,
    );
  }
  const reader = spawn(pgRestorePath, ['--list'], { env: toolEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  kills.push(() => reader.kill('SIGKILL'));
  const stderr = new StderrTail();
  stderr.attach(reader.stderr);
  let listing = '';
  let partial = '';
  let entries = 0;
  reader.stdout.setEncoding('utf8');
  reader.stdout.on('data', (s: string) => {
    if (listing.length < HEAD_CHARS) listing += s.slice(0, HEAD_CHARS - listing.length);
    const lines = (partial + s).split('\n');
    partial = lines.pop()!;
    entries += lines.filter((l) => /^\d+;/.test(l)).length;
  });
  // pg_restore closes its input after the table of contents: the pipe then ends with EPIPE.
  reader.stdin.on('error', () => undefined);
  reader.stdin.write(head);
  unpacked.stream.pipe(reader.stdin);
  const { code } = await exitOf(reader);
  unpacked.stream.unpipe();
  stop();
  if (code !== 0) throw broken(`is not readable by pg_restore --list (exit ${code}): ${stderr.toString()}`);
  return { check: `pg_restore --list (${entries} entries)`, head: listing };
}
