/**
 * `dbops backups adopt`: the spec's backups become dbops backups. Each file is read once: its
 * bytes are hashed and copied into the store as `<db>/<id>/dump.sql.gz` while their gzip stream
 * is decompressed and inspected (inspect.ts). Only a file that decompresses to its end and is a
 * complete pg_dump plain dump gets a manifest (marked `adopted`, written last, signed like any
 * other); anything else leaves nothing in the store and is reported with the reason. The source
 * file is never changed. Adopting again finds what is already adopted and skips it.
 */
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { specBackupId } from '../../../common/adopted';
import {
  type BackupManifest,
  backupFileKey,
  backupFolderKey,
  dumpFileName,
  manifestKey,
  parseBackupId,
} from '../../../common/backup';
import { failureTypeOf, FailureType } from '../../../common/failures';
import { createBackupStore, loadManifest, type BackupStore, type StorageSettings } from '../../storage';
import { manifestToWrite } from '../../storage/manifest';
import { HashTap, teeTo } from '../dump-pipeline';
import { SpecDumpInspector, type PlainDumpFacts } from './inspect';
import { openSource, type AdoptSource, type SourceFile } from './sources';

export interface AdoptOptions {
  /** A folder or `s3://bucket/prefix`; default: the store's own root. */
  readonly from?: string;
  /** Only these databases' files (default: every database named by a file). */
  readonly databases?: readonly string[];
  readonly dryRun?: boolean;
  /** Called as each file is decided, for a live report. */
  readonly onFile?: (outcome: AdoptOutcome) => void;
}

export type AdoptStatus = 'adopted' | 'would adopt' | 'already adopted' | 'unusable' | 'skipped';

export interface AdoptOutcome {
  readonly file: string;
  readonly status: AdoptStatus;
  readonly backupId?: string;
  readonly sizeBytes?: number;
  readonly verboseLines?: number;
  /** Why it was not adopted, or what to know about it (pg_dump's warnings). */
  readonly reason?: string;
}

export interface AdoptReport {
  readonly source: string;
  readonly store: string;
  readonly dryRun: boolean;
  readonly files: readonly AdoptOutcome[];
}

export async function adoptSpecBackups(storage: StorageSettings, opts: AdoptOptions): Promise<AdoptReport> {
  const source = openSource(opts.from, storage);
  const store = createBackupStore(storage);
  try {
    const files: AdoptOutcome[] = [];
    for (const file of await source.list()) {
      const outcome = await adoptFile(source, store, file, opts);
      opts.onFile?.(outcome);
      files.push(outcome);
    }
    return { source: source.location, store: store.describe(''), dryRun: opts.dryRun === true, files };
  } finally {
    await Promise.all([source.close(), store.close()]);
  }
}

async function adoptFile(
  source: AdoptSource,
  store: BackupStore,
  file: SourceFile,
  opts: AdoptOptions,
): Promise<AdoptOutcome> {
  const named = specBackupId(file.name);
  if ('problem' in named || file.link)
    return {
      file: source.describe(file.name),
      status: 'skipped',
      reason:
        'problem' in named ? named.problem : 'a symbolic link: its target is adopted under its own name',
    };
  const backupId = named.id;
  const { database, time } = parseBackupId(backupId);
  const base = { file: source.describe(file.name), backupId };
  if (opts.databases && !opts.databases.includes(database))
    return {
      ...base,
      status: 'skipped',
      reason: `database ${database} is not among --database ${opts.databases.join(',')}`,
    };
  const existing = await existingBackup(store, backupId);
  if (existing !== undefined) return { ...base, ...existing };
  const checked = await copyAndInspect(source, store, file.name, backupId, opts.dryRun === true);
  if ('problem' in checked) return { ...base, status: 'unusable', reason: `the file ${checked.problem}` };
  const { facts } = checked;
  const outcome = {
    ...base,
    sizeBytes: checked.size,
    verboseLines: facts.verboseLines,
    ...(facts.warnings.length && { reason: `pg_dump said: ${facts.warnings.join('; ')}` }),
  };
  if (opts.dryRun) return { ...outcome, status: 'would adopt' };
  const manifest = adoptedManifest(source.describe(file.name), backupId, database, time, checked);
  await store.putJson(manifestKey(database, backupId), manifestToWrite(store, manifest));
  return { ...outcome, status: 'adopted' };
}

/** An adopted backup of this id (skipped), a dbops backup of it (a clash, reported), or nothing. */
async function existingBackup(
  store: BackupStore,
  backupId: string,
): Promise<Pick<AdoptOutcome, 'status' | 'reason'> | undefined> {
  const { database } = parseBackupId(backupId);
  if (!(await store.head(manifestKey(database, backupId)))) return undefined;
  try {
    const manifest = await loadManifest(store, backupId);
    if (manifest.adopted) return { status: 'already adopted', reason: `from ${manifest.adopted.source}` };
    return {
      status: 'unusable',
      reason: `dbops backup ${backupId} already exists in the store (same second): not replaced`,
    };
  } catch (err) {
    if (failureTypeOf(err) !== FailureType.IntegrityCheckFailed) throw err;
    return {
      status: 'unusable',
      reason: `backup ${backupId} exists in the store with a manifest that is refused: ${(err as Error).message}`,
    };
  }
}

interface Checked {
  readonly size: number;
  readonly sha256: string;
  readonly rawBytes: number;
  readonly facts: PlainDumpFacts;
}

/**
 * One read of the source file: SHA-256 and size of its bytes, their copy into the store (unless a
 * dry run), and gunzip into the inspector. The copy is removed when the file proves unusable.
 */
async function copyAndInspect(
  source: AdoptSource,
  store: BackupStore,
  name: string,
  backupId: string,
  dryRun: boolean,
): Promise<Checked | { problem: string }> {
  const { database } = parseBackupId(backupId);
  const key = backupFileKey(database, backupId, dumpFileName('plain', 'gzip'));
  const hash = new HashTap();
  const gunzip = createGunzip();
  const inspector = new SpecDumpInspector();
  let gzipError: Error | undefined;
  const inspected = pipeline(gunzip, async (text: AsyncIterable<Buffer>) => {
    for await (const chunk of text) inspector.write(chunk);
  }).catch((err: Error) => void (gzipError = err));
  const abort = new AbortController();
  const targets: Writable[] = [gunzip];
  let copied: Promise<unknown> = Promise.resolve();
  if (!dryRun) {
    const copy = new PassThrough();
    copied = store.put(key, copy, { signal: abort.signal, contentType: 'application/gzip' });
    // Awaited below; a failed copy must not count as unhandled while the read goes on.
    copied.catch(() => undefined);
    targets.push(copy);
  }
  // A file that proves unusable (or a read that fails) leaves nothing in the store.
  const discard = async () => {
    abort.abort();
    await copied.catch(() => undefined);
    if (!dryRun) await removeCopy(store, database, backupId);
  };
  const body: Readable = await source.open(name);
  try {
    await pipeline(
      body,
      hash,
      teeTo(targets, () => undefined),
    );
    await inspected;
    const facts = gzipError
      ? { problem: `does not decompress (gzip): ${gzipError.message}` }
      : inspector.end();
    if ('problem' in facts) {
      await discard();
      return facts;
    }
    await copied;
    return { size: hash.bytes, sha256: hash.digest(), rawBytes: inspector.rawBytes, facts };
  } catch (err) {
    await discard();
    throw err;
  }
}

async function removeCopy(store: BackupStore, database: string, backupId: string): Promise<void> {
  for (const o of await store.list(backupFolderKey(database, backupId))) await store.delete(o.key);
}

function adoptedManifest(
  from: string,
  backupId: string,
  database: string,
  time: Date,
  checked: Checked,
): BackupManifest {
  const { facts } = checked;
  const now = new Date().toISOString();
  return {
    manifestVersion: 1,
    id: backupId,
    database,
    format: 'plain',
    compression: 'gzip',
    file: dumpFileName('plain', 'gzip'),
    sizeBytes: checked.size,
    sha256: checked.sha256,
    rawBytes: checked.rawBytes,
    startedAt: time.toISOString(),
    finishedAt: time.toISOString(),
    durationMs: 0,
    serverVersion: facts.serverVersion,
    pgDumpVersion: facts.pgDumpVersion,
    schemaVersion: null,
    dumpOptions: facts.dumpOptions,
    tables: [],
    integrity: {
      checkedAt: now,
      checks: `adopted: size ${checked.size} B + sha256, gzip stream to the end (${checked.rawBytes} B), pg_dump plain dump header and end line, ${facts.verboseLines} pg_dump --verbose lines removed before psql, \\restrict lock ${facts.restrictLock === 'own' ? 'of its own' : 'added at restore'}; row counts unknown until verified`,
    },
    adopted: {
      source: from,
      adoptedAt: now,
      verboseLines: facts.verboseLines,
      restrictLock: facts.restrictLock,
    },
  };
}
