/**
 * Reading and writing manifests as untrusted input: bounded in size, parsed with the schema,
 * checked against the backup asked for, and signed or proven when the store has a manifest key.
 */
import { type BackupManifest, manifestKey, parseBackupId } from '../../common/backup';
import type { Readable } from 'node:stream';
import { FailureType, failure, failureTypeOf } from '../../common/failures';
import { signatureProblem, signManifest } from './manifest-key';
import { MAX_MANIFEST_BYTES, parseManifest } from './manifest-schema';
import type { BackupStore } from './types';

/** What to do about a manifest that is refused: it is never repaired in place. */
const REFUSED_FIX =
  'nothing it describes is restored; restore another backup ("dbops backups list") or take a new one ("dbops backup")';

/**
 * The object at `key` parsed as JSON, refused unread beyond `limit` bytes; undefined when absent.
 * `size`: the object's size when a listing already gave it (saves a request per object).
 */
export async function readBoundedJson(
  store: BackupStore,
  key: string,
  limit: number,
  refuse: (what: string) => Error,
  size?: number,
): Promise<unknown> {
  const known = size ?? (await store.head(key))?.size;
  if (known === undefined) return undefined;
  const tooLarge = (bytes: number) =>
    refuse(`is ${bytes} bytes, more than any manifest dbops writes (${limit} at most)`);
  if (known > limit) throw tooLarge(known);
  let body: Readable;
  try {
    body = await store.get(key);
  } catch (err) {
    // Deleted since it was listed or head() saw it (retention, a concurrent cleanup): absent.
    if (failureTypeOf(err) === FailureType.NotFound) return undefined;
    throw err;
  }
  const parts: Buffer[] = [];
  let bytes = 0;
  // Counted again while reading: the object may have been replaced since it was sized.
  for await (const chunk of body) {
    bytes += (chunk as Buffer).length;
    if (bytes > limit) throw tooLarge(bytes);
    parts.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8'));
  } catch (err) {
    throw refuse(`is not JSON (${(err as Error).message})`);
  }
}

/**
 * Loads a complete backup's manifest, or fails naming the id: NotFound without one;
 * IntegrityCheckFailed for a manifest too large, not JSON, refused by the schema (the field named),
 * naming another backup, database or file, or, when the store has a manifest key, unsigned or
 * not signed by it.
 */
export async function loadManifest(store: BackupStore, backupId: string): Promise<BackupManifest> {
  let database: string;
  try {
    database = parseBackupId(backupId).database;
  } catch (err) {
    throw failure(FailureType.InvalidInput, (err as Error).message);
  }
  const key = manifestKey(database, backupId);
  const where = `backup ${backupId}: ${store.describe(key)}`;
  const refuse = (what: string, fix = REFUSED_FIX) =>
    failure(FailureType.IntegrityCheckFailed, `${where} ${what}: ${fix}`);
  const value = await readBoundedJson(store, key, MAX_MANIFEST_BYTES, refuse);
  if (value === undefined) {
    throw failure(
      FailureType.NotFound,
      `backup ${backupId} has no manifest at ${store.describe(key)}: it does not exist or is incomplete; list backups with "dbops backups list"`,
    );
  }
  const parsed = parseManifest(value, backupId);
  if ('problem' in parsed) throw refuse(`${parsed.problem}; it was edited or copied from another backup`);
  if (store.manifestKey) {
    const problem = signatureProblem(parsed.manifest, store.manifestKey);
    if (problem) {
      throw refuse(
        problem,
        'nothing it describes is restored; restore a backup written by a worker with this key ("dbops backups list" shows each signature) or take a new one; a backup from before DBOPS_MANIFEST_KEY was set restores only on a worker without it',
      );
    }
  }
  return parsed.manifest;
}

/**
 * The manifest as written: checked with the same schema as every read (a worker never writes what
 * it would refuse), and signed when the store has a manifest key.
 */
export function manifestToWrite(store: BackupStore, manifest: BackupManifest): BackupManifest {
  const { signature: _unsigned, ...content } = manifest;
  const parsed = parseManifest(content, manifest.id);
  if ('problem' in parsed) {
    throw failure(
      FailureType.InvalidInput,
      `backup ${manifest.id}: the manifest to write ${parsed.problem}; this is a bug in the backup workflow: report it with the workflow's history`,
    );
  }
  return store.manifestKey ? signManifest(parsed.manifest, store.manifestKey) : parsed.manifest;
}
