import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import {
  type BackupEntry,
  type BackupManifest,
  backupFileKey,
  backupStatus,
  parseBackupId,
} from '../../../common/backup';
import { FailureType, failure } from '../../../common/failures';
import { InputError } from '../../../common/names';
import { LATEST, LATEST_VERIFIED } from '../../../common/restore';
import { listBackupEntries, loadManifest, type BackupStore } from '../../storage';
import { toolEnv } from '../binaries';
import { decompress, type Digested, exitOf, FileDigest, HashTap, StderrTail } from '../dump-pipeline';
import { outsideCause } from './run';

/** A backup chosen for restore or verification, with what the plan shows. */
export interface ResolvedBackup {
  readonly manifest: Omit<BackupManifest, 'tables'>;
  readonly tables: number;
  readonly rows: number;
  readonly verification: 'passed' | 'failed' | 'never';
}

function summarize(manifest: BackupManifest, entry?: BackupEntry): ResolvedBackup {
  const { tables, ...rest } = manifest;
  return {
    manifest: rest,
    tables: tables.filter((t) => t.kind !== 'partitioned').length,
    rows: tables.filter((t) => t.kind !== 'partitioned').reduce((s, t) => s + t.rows, 0),
    verification: entry?.verification?.status ?? 'never',
  };
}

/** Resolves an id, `latest` or `latest-verified`; an unknown id fails listing the nearest ids. */
export async function resolveBackup(
  store: BackupStore,
  selector: string,
  database: string | undefined,
): Promise<ResolvedBackup> {
  if (selector === LATEST || selector === LATEST_VERIFIED) {
    if (!database)
      throw failure(FailureType.InvalidInput, `"${selector}" needs a database: pass --database or --target`);
    const entries = await listBackupEntries(store, database);
    const wanted = [...entries]
      .reverse()
      .find((e) =>
        selector === LATEST
          ? backupStatus(e) === 'verified' || backupStatus(e) === 'complete'
          : backupStatus(e) === 'verified',
      );
    if (!wanted?.manifest) {
      throw failure(
        FailureType.NotFound,
        `no ${selector === LATEST ? 'complete' : 'verified'} backup of database ${database} in ${store.describe(`${database}/`)} (${entries.length} backup folders); list them with "dbops backups list"${selector === LATEST_VERIFIED ? ' or verify one with "dbops verify latest"' : ''}`,
      );
    }
    // Loaded again through loadManifest: a manifest naming another backup or database is refused.
    return summarize(await loadManifest(store, wanted.id), wanted);
  }
  let parsed;
  try {
    parsed = parseBackupId(selector);
  } catch (err) {
    if (err instanceof InputError) throw failure(FailureType.InvalidInput, err.message);
    throw err;
  }
  const entries = await listBackupEntries(store, parsed.database);
  const entry = entries.find((e) => e.id === selector && e.complete);
  if (!entry) {
    const nearest = entries
      .filter((e) => e.complete)
      .sort(
        (a, b) =>
          Math.abs(Date.parse(a.time) - parsed.time.getTime()) -
          Math.abs(Date.parse(b.time) - parsed.time.getTime()),
      )
      .slice(0, 5)
      .map((e) => e.id);
    throw failure(
      FailureType.NotFound,
      `backup ${selector} not found in ${store.describe(`${parsed.database}/`)}${nearest.length ? `; nearest: ${nearest.join(', ')}` : `; database ${parsed.database} has no complete backups`}`,
    );
  }
  return summarize(await loadManifest(store, selector), entry);
}

/**
 * The archive and its running digest: streamed from the store and hashed as it flows, or, from a
 * local store when zstd can read it (`preferFile`), the file itself, hashed beside the reader.
 */
export type ArchiveSource =
  | { readonly stream: Readable; readonly file?: undefined; readonly digest: HashTap }
  | { readonly file: string; readonly stream?: undefined; readonly digest: FileDigest };

/** Opens the archive after checking its size against the manifest; prove its digest with assertDigest. */
export async function archiveSource(
  store: BackupStore,
  manifest: Pick<BackupManifest, 'database' | 'id' | 'file' | 'sizeBytes'>,
  options: { preferFile?: boolean } = {},
): Promise<ArchiveSource> {
  const key = backupFileKey(manifest.database, manifest.id, manifest.file);
  const head = await store.head(key);
  if (!head) {
    throw failure(
      FailureType.IntegrityCheckFailed,
      `backup ${manifest.id}: archive ${store.describe(key)} is missing`,
    );
  }
  if (head.size !== manifest.sizeBytes) {
    throw failure(
      FailureType.IntegrityCheckFailed,
      `backup ${manifest.id}: archive ${store.describe(key)} is ${head.size} bytes, the manifest says ${manifest.sizeBytes} (truncated or replaced)`,
    );
  }
  if (options.preferFile && store.localFile) {
    return { file: await store.localFile(key), digest: new FileDigest() };
  }
  const tap = new HashTap();
  const source = await store.get(key);
  source.once('error', (err) => tap.destroy(err));
  return { stream: source.pipe(tap), digest: tap };
}

export function assertDigest(
  manifest: Pick<BackupManifest, 'id' | 'sha256' | 'sizeBytes'>,
  digested: Digested,
): string {
  const digest = digested.digest();
  if (digested.bytes !== manifest.sizeBytes || digest !== manifest.sha256) {
    throw failure(
      FailureType.IntegrityCheckFailed,
      `backup ${manifest.id}: archive has ${digested.bytes} bytes with SHA-256 ${digest}, the manifest says ${manifest.sizeBytes} bytes with ${manifest.sha256}`,
    );
  }
  return digest;
}

/** Extension names from `pg_restore --list` output or a plain SQL dump. */
export function extensionsIn(text: string): string[] {
  const names = new Set<string>();
  for (const m of text.matchAll(/\bEXTENSION - (\S+)/g)) names.add(m[1]!);
  for (const m of text.matchAll(/^CREATE EXTENSION IF NOT EXISTS (\S+)/gm))
    names.add(m[1]!.replace(/"/g, ''));
  return [...names].sort();
}

/**
 * Writes the archive to a file (seekable, for pg_restore -j) with its compression undone. zstd reads
 * a local archive itself while Node hashes it beside; a stream is fed to zstd's stdin.
 */
export async function decompressToFile(
  manifest: Pick<BackupManifest, 'compression'>,
  source: ArchiveSource,
  file: string,
  kills: (() => void)[],
  signal?: AbortSignal,
): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  if (manifest.compression === 'zstd') {
    const child = spawn(
      'zstd',
      ['-d', '-q', '-f', '-o', file, ...(source.file !== undefined ? ['--', source.file] : [])],
      { env: toolEnv(), stdio: [source.file !== undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'] },
    );
    kills.push(() => child.kill('SIGKILL'));
    const tail = new StderrTail();
    tail.attach(child.stderr);
    const fed =
      source.file !== undefined
        ? source.digest.read(source.file, signal).then(
            () => undefined,
            (err: Error) => err,
          )
        : pipeline(source.stream, child.stdin!).catch((err: Error) => err);
    const { code, signal: killedBy } = await exitOf(child);
    const feedError = await fed;
    if (code !== 0) {
      const message = `zstd -d of the archive into ${file} ${killedBy ? `killed by ${killedBy}` : `exited ${code}`}: ${tail.toString()}`;
      // A full scratch folder or a killed zstd says nothing about the archive (never a verdict).
      const outside = outsideCause(tail.toString(), killedBy);
      if (outside)
        throw failure(FailureType.Unavailable, `${message} (${outside}: not a fault of the backup)`);
      throw failure(FailureType.IntegrityCheckFailed, message);
    }
    if (feedError instanceof Error) throw feedError;
    return;
  }
  if (source.stream === undefined) throw new Error(`${manifest.compression} archives are read as a stream`);
  const d = decompress(manifest.compression, source.stream);
  kills.push(() => d.kill());
  await pipeline(d.stream, createWriteStream(file));
  await d.done.catch((err: Error) => {
    throw failure(FailureType.IntegrityCheckFailed, `decompressing the archive failed: ${err.message}`);
  });
}
