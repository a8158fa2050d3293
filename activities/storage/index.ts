import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Context } from '@temporalio/activity';
import {
  type BackupEntry,
  type BackupManifest,
  type BackupVerification,
  type LatestPointer,
  type PruneDecision,
  type RetentionPolicy,
  isGoodBackup,
  isValidBackupId,
  latestKey,
  MANIFEST_FILE,
  manifestKey,
  parseBackupId,
  heldReason,
  planPrune,
  VERIFICATION_FILE,
  verificationKey,
  backupFolderKey,
} from '../../common/backup';
import { FailureType, failure } from '../../common/failures';
import { InputError } from '../../common/names';
import { createHoldActivities, deleteUnlessHeld, listHolds, removeExpiredHolds } from './holds';
import { LocalStore } from './local';
import { loadManifest, manifestToWrite, readBoundedJson } from './manifest';
import { loadManifestKey } from './manifest-key';
import { MAX_MANIFEST_BYTES } from './manifest-schema';
import { MirroredStore, mirrorOf } from './mirror';
import { S3Store } from './s3';
import type { AgeSettings, BackupStore, StorageSettings } from './types';

export type { AgeSettings, BackupStore, StorageSettings, ObjectInfo, PutOptions } from './types';
export { loadManifest } from './manifest';
export { ManifestKey, signatureStatus } from './manifest-key';
export { compareMirror, mirrorOf, repairMirror, MirroredStore, type LocalCopy } from './mirror';

/**
 * The store's settings with the manifest policy of DBOPS_MANIFEST_KEY (`keyFile`): its key (read
 * once per process) signs every manifest written and must have signed every manifest loaded.
 */
export function withManifestKey(storage: StorageSettings, keyFile: string | undefined): StorageSettings {
  return keyFile === undefined ? storage : { ...storage, manifestKey: loadManifestKey(keyFile) };
}

/** The store's settings with client-side encryption (DBOPS_BACKUP_AGE_*): workers write and read with it. */
export function withAge(storage: StorageSettings, age: AgeSettings): StorageSettings {
  return { ...storage, age };
}

export function createBackupStore(settings: StorageSettings): BackupStore {
  if (settings.kind === 'local') return new LocalStore(settings.dir, settings.manifestKey);
  const s3 = new S3Store(settings);
  return settings.mirror
    ? new MirroredStore(s3, new LocalStore(settings.mirror.dir, settings.manifestKey))
    : s3;
}

/** Opens the configured store for `fn` and always closes it (an S3 client holds sockets). */
export async function withBackupStore<T>(
  settings: StorageSettings,
  fn: (store: BackupStore) => Promise<T>,
): Promise<T> {
  const store = createBackupStore(settings);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Downloads an object to a local (seekable) file, e.g. for `pg_restore -j`; removes the file on failure. */
export async function downloadToFile(
  store: BackupStore,
  key: string,
  file: string,
  signal?: AbortSignal,
): Promise<void> {
  try {
    await pipeline(await store.get(key), createWriteStream(file), { signal });
  } catch (err) {
    await rm(file, { force: true });
    throw err;
  }
}

/** Backup folders of one database, oldest first; incomplete ones (no manifest) included, marked. */
export async function listBackupEntries(store: BackupStore, database: string): Promise<BackupEntry[]> {
  const objects = await store.list(`${database}/`);
  const folders = new Map<string, { files: Set<string>; bytes: number; manifestBytes: number }>();
  for (const o of objects) {
    const [, id, file] = o.key.split('/');
    if (!id || !file || !isValidBackupId(id)) continue;
    const f = folders.get(id) ?? { files: new Set(), bytes: 0, manifestBytes: 0 };
    f.files.add(file);
    f.bytes += o.size;
    if (file === MANIFEST_FILE) f.manifestBytes = o.size;
    folders.set(id, f);
  }
  const entries: BackupEntry[] = [];
  for (const [id, f] of [...folders].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const parsed = parseBackupId(id);
    if (parsed.database !== database) continue;
    const complete = f.files.has(MANIFEST_FILE);
    const read = complete ? await readListedManifest(store, database, id, f.manifestBytes) : {};
    const { manifest } = read;
    const verification = f.files.has(VERIFICATION_FILE)
      ? await store.getJson<BackupVerification>(verificationKey(database, id))
      : undefined;
    entries.push({
      id,
      database,
      time: parsed.time.toISOString(),
      complete: complete && manifest !== undefined,
      manifest,
      verification,
      storedBytes: f.bytes,
      ...(read.problem !== undefined && { manifestProblem: read.problem }),
    });
  }
  return entries;
}

/** Why a listed manifest was not read (see readListedManifest). */
class UnreadableManifest extends Error {}

/**
 * A listed manifest, read as it is (listings and retention also count manifests of other tools and
 * tests; loadManifest judges one before a restore), but bounded: one too large or not JSON makes
 * its folder incomplete, with the reason, instead of failing the listing or exhausting memory.
 */
async function readListedManifest(
  store: BackupStore,
  database: string,
  id: string,
  size: number,
): Promise<{ manifest?: BackupManifest; problem?: string }> {
  const key = manifestKey(database, id);
  const unreadable = (what: string) => new UnreadableManifest(`${store.describe(key)} ${what}`);
  try {
    const value = await readBoundedJson(store, key, MAX_MANIFEST_BYTES, unreadable, size);
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      return { manifest: value as BackupManifest };
    return { problem: unreadable('is not a JSON object').message };
  } catch (err) {
    if (err instanceof UnreadableManifest) return { problem: err.message };
    throw err;
  }
}

/** Databases that have anything in the store. */
export async function listStoredDatabases(store: BackupStore): Promise<string[]> {
  const names = new Set<string>();
  for (const o of await store.list('')) {
    const [db, id] = o.key.split('/');
    if (db && id && (isValidBackupId(id) || id === 'latest.json')) names.add(db);
  }
  return [...names].sort();
}

/** Deletes everything under a backup folder (the manifest first, so a half-deleted backup is never listed as complete). */
export async function deleteBackupFolder(
  store: BackupStore,
  database: string,
  backupId: string,
): Promise<number> {
  const objects = await store.list(backupFolderKey(database, backupId));
  const ordered = [...objects].sort(
    (a, b) => Number(b.key.endsWith(MANIFEST_FILE)) - Number(a.key.endsWith(MANIFEST_FILE)),
  );
  for (const o of ordered) await store.delete(o.key);
  // A local copy's objects the primary no longer lists (a delete that failed halfway) go too.
  let strays = 0;
  const mirror = mirrorOf(store);
  for (const o of mirror ? await mirror.list(backupFolderKey(database, backupId)) : []) {
    await mirror?.delete(o.key);
    strays++;
  }
  return objects.length + strays;
}

export interface PruneResult {
  readonly database: string;
  readonly dryRun: boolean;
  readonly deleted: readonly { id: string; reason: string }[];
  readonly kept: readonly { id: string; reason: string }[];
  /** Kept only because a restore or verification holds them (also in `kept`). */
  readonly held: readonly { id: string; reason: string }[];
}

/** Retention for one database (planPrune); a held backup is never deleted, nor are expired holds kept. */
export async function pruneDatabase(
  store: BackupStore,
  database: string,
  policy: RetentionPolicy,
  dryRun: boolean,
  now = new Date(),
): Promise<PruneResult> {
  const holds = await listHolds(store, database);
  const decisions: PruneDecision[] = planPrune(await listBackupEntries(store, database), policy, now, holds);
  const row = (d: PruneDecision) => ({ id: d.entry.id, reason: d.reason });
  const kept = decisions.filter((d) => d.action === 'keep').map(row);
  const held = decisions.filter((d) => d.held).map(row);
  const deleted: { id: string; reason: string }[] = [];
  for (const d of decisions.filter((x) => x.action === 'delete')) {
    // A hold taken since the holds were read still keeps the backup (see holds.ts).
    const late = dryRun ? [] : await deleteUnlessHeld(store, d.entry, now, deleteBackupFolder);
    if (late.length === 0) deleted.push(row(d));
    else {
      kept.push({ id: d.entry.id, reason: heldReason(d.reason, late) });
      held.push({ id: d.entry.id, reason: heldReason(d.reason, late) });
    }
  }
  if (!dryRun) await removeExpiredHolds(store, database, now);
  return { database, dryRun, deleted, kept, held };
}

export interface StorageDeps {
  readonly storage: StorageSettings;
  readonly retention: RetentionPolicy;
}

function asInputFailure(err: unknown): never {
  if (err instanceof InputError) throw failure(FailureType.InvalidInput, err.message);
  throw err;
}

/** Activities on the backup store (short profile). Settings and credentials come from the worker. */
export function createStorageActivities(deps: StorageDeps) {
  const withStore = <T>(fn: (store: BackupStore) => Promise<T>): Promise<T> =>
    withBackupStore(deps.storage, fn).catch(asInputFailure);
  return {
    ...createHoldActivities(withStore),
    async probeBackupStore(): Promise<{ location: string }> {
      return withStore(async (store) => {
        await store.probeWritable();
        return { location: store.describe('') };
      });
    },

    /** Completes a backup: the manifest is the last object written. Idempotent (overwrites). */
    async writeBackupManifest(manifest: BackupManifest): Promise<{ location: string }> {
      return withStore(async (store) => {
        parseBackupId(manifest.id);
        const written = manifestToWrite(store, manifest);
        const dump = await store.head(`${manifest.database}/${manifest.id}/${manifest.file}`);
        if (!dump || dump.size !== manifest.sizeBytes) {
          throw failure(
            FailureType.IntegrityCheckFailed,
            `backup ${manifest.id}: archive ${store.describe(`${manifest.database}/${manifest.id}/${manifest.file}`)} is ${dump ? `${dump.size} bytes, expected ${manifest.sizeBytes}` : 'missing'}`,
          );
        }
        // Backup ids are to the second: two backups of one database started in the same second
        // (by hand, under different workflow ids) share a folder. The first manifest stands; a
        // second one never replaces it (its workflow would report a backup the store does not hold).
        const key = manifestKey(manifest.database, manifest.id);
        // An existing manifest that cannot be read is not overwritten either: the error goes up.
        const existing = await store.getJson<{ workflowId?: unknown }>(key);
        if (existing && existing.workflowId !== manifest.workflowId) {
          throw failure(
            FailureType.Refused,
            `backup ${manifest.id} already exists, made by ${JSON.stringify(existing.workflowId ?? 'another backup')}: two backups of ${manifest.database} started in the same second; start this one again (the next second gives a new backup id)`,
          );
        }
        await store.putJson(key, written);
        return { location: store.describe(backupFolderKey(manifest.database, manifest.id)) };
      });
    },

    /** Moves `latest` to a complete backup, never backwards in time. */
    async moveLatestPointer(input: { database: string; backupId: string }): Promise<LatestPointer> {
      return withStore(async (store) => {
        const manifest = await loadManifest(store, input.backupId);
        const current = await store.getJson<LatestPointer>(latestKey(input.database));
        if (current && current.id > input.backupId) return current;
        const pointer: LatestPointer = {
          id: manifest.id,
          database: manifest.database,
          file: manifest.file,
          sha256: manifest.sha256,
          sizeBytes: manifest.sizeBytes,
          updatedAt: new Date().toISOString(),
        };
        await store.replaceJson(latestKey(input.database), pointer);
        return pointer;
      });
    },

    /** Removes the leftovers of a failed or cancelled backup; a complete backup is never touched. */
    async discardIncompleteBackup(input: {
      database: string;
      backupId: string;
    }): Promise<{ removed: number }> {
      return withStore(async (store) => {
        parseBackupId(input.backupId);
        if (await store.head(manifestKey(input.database, input.backupId))) return { removed: 0 };
        // A dump attempt whose worker was killed left its multipart upload or temporary file:
        // nothing else ever writes this folder again.
        const folder = backupFolderKey(input.database, input.backupId);
        const interrupted = await store.sweepInterrupted(folder);
        return { removed: interrupted + (await deleteBackupFolder(store, input.database, input.backupId)) };
      });
    },

    async pruneBackups(input: { database: string; dryRun: boolean }): Promise<PruneResult> {
      return withStore(async (store) => {
        const result = await pruneDatabase(store, input.database, deps.retention, input.dryRun);
        Context.current().log.info('backup retention applied', {
          database: input.database,
          dryRun: input.dryRun,
          deleted: result.deleted.map((d) => d.id),
          held: result.held.map((d) => d.reason),
        });
        return result;
      });
    },

    async listBackups(input: { database: string }): Promise<BackupEntry[]> {
      return withStore((store) => listBackupEntries(store, input.database));
    },
  };
}

export type StorageActivities = ReturnType<typeof createStorageActivities>;
export { isGoodBackup };
