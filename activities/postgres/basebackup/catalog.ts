import {
  BASE_BACKUP_FILES,
  type BaseBackupEntry,
  type BaseBackupKind,
  type BaseBackupManifest,
  incrementalParent,
  isValidBaseBackupId,
  parseBaseBackupId,
} from '../../../common/basebackup';
import { FailureType, failure } from '../../../common/failures';
import { baseBackupObjectKey, baseBackupPrefix } from '../../../common/pitr';
import type { BackupStore } from '../../storage';
import { readBoundedJson } from '../../storage/manifest';
import { MAX_MANIFEST_BYTES } from '../../storage/manifest-schema';

/** Base backups of one cluster, oldest first; incomplete ones (no manifest.json) included, marked. */
export async function listBaseBackupEntries(
  store: BackupStore,
  systemIdentifier: string,
): Promise<BaseBackupEntry[]> {
  const prefix = `${baseBackupPrefix(systemIdentifier)}/`;
  const folders = new Map<string, { bytes: number; manifestBytes?: number }>();
  for (const o of await store.list(prefix)) {
    const [id, file, ...rest] = o.key.slice(prefix.length).split('/');
    if (!id || !file || rest.length > 0 || !isValidBaseBackupId(id)) continue;
    const f = folders.get(id) ?? { bytes: 0 };
    f.bytes += o.size;
    if (file === BASE_BACKUP_FILES.manifest) f.manifestBytes = o.size;
    folders.set(id, f);
  }
  const entries: BaseBackupEntry[] = [];
  for (const [id, f] of [...folders].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const { time, kind } = parseBaseBackupId(id);
    const manifest =
      f.manifestBytes === undefined
        ? undefined
        : await readBaseManifest(store, systemIdentifier, id, f.manifestBytes);
    entries.push({
      id,
      kind,
      time: time.toISOString(),
      complete: manifest !== undefined,
      ...(manifest && { manifest }),
      storedBytes: f.bytes,
    });
  }
  return entries;
}

/** A listed manifest.json, bounded; one that is not a manifest of this backup makes its folder incomplete. */
async function readBaseManifest(
  store: BackupStore,
  systemIdentifier: string,
  id: string,
  size: number,
): Promise<BaseBackupManifest | undefined> {
  const key = baseBackupObjectKey(systemIdentifier, id, BASE_BACKUP_FILES.manifest);
  const refuse = (what: string) => new Error(`${store.describe(key)} ${what}`);
  const value = (await readBoundedJson(store, key, MAX_MANIFEST_BYTES, refuse, size).catch(
    () => undefined,
  )) as Partial<BaseBackupManifest> | undefined;
  const ok =
    value?.id === id &&
    value.systemIdentifier === systemIdentifier &&
    value.verification?.verdict === 'passed';
  return ok ? (value as BaseBackupManifest) : undefined;
}

/**
 * The parent of a new incremental backup: the newest complete one of the cluster. Refused with
 * the fix when there is none: an incremental backup needs a full one to build on.
 */
export async function parentForIncremental(
  store: BackupStore,
  systemIdentifier: string,
): Promise<BaseBackupManifest> {
  const parent = incrementalParent(await listBaseBackupEntries(store, systemIdentifier));
  if (!parent)
    throw failure(
      FailureType.Refused,
      `no full base backup of cluster ${systemIdentifier} in ${store.describe(`${baseBackupPrefix(systemIdentifier)}/`)}: an incremental base backup builds on one; take a full one first ("dbops basebackup", without --incremental)`,
    );
  return parent;
}

/** Completes a base backup: the manifest is written last, after its objects are checked present. */
export async function writeBaseBackupManifest(
  store: BackupStore,
  manifest: BaseBackupManifest,
): Promise<string> {
  const { systemIdentifier: sysid, id } = manifest;
  const expectKind: BaseBackupKind = parseBaseBackupId(id).kind;
  if (manifest.kind !== expectKind || (manifest.kind === 'incremental') !== (manifest.parentId !== undefined))
    throw failure(
      FailureType.InvalidInput,
      `base backup ${id}: kind ${manifest.kind} and parent ${manifest.parentId ?? '(none)'} do not match`,
    );
  for (const [file, size] of [
    [manifest.file, manifest.sizeBytes],
    [manifest.pgManifest.file, manifest.pgManifest.sizeBytes],
  ] as const) {
    const key = baseBackupObjectKey(sysid, id, file);
    const found = await store.head(key);
    if (found?.size !== size)
      throw failure(
        FailureType.IntegrityCheckFailed,
        `base backup ${id}: ${store.describe(key)} is ${found ? `${found.size} bytes, expected ${size}` : 'missing'}`,
      );
  }
  const key = baseBackupObjectKey(sysid, id, BASE_BACKUP_FILES.manifest);
  const existing = await store.getJson<{ workflowId?: unknown }>(key);
  if (existing && existing.workflowId !== manifest.workflowId)
    throw failure(
      FailureType.Refused,
      `base backup ${id} already exists, made by ${JSON.stringify(existing.workflowId ?? 'another run')}: start this one again (the next second gives a new id)`,
    );
  await store.putJson(key, manifest);
  return store.describe(`${baseBackupPrefix(sysid, id)}/`);
}

/** Removes what a failed or cancelled base backup wrote; a complete one (with its manifest) is never touched. */
export async function discardIncompleteBaseBackup(
  store: BackupStore,
  systemIdentifier: string,
  id: string,
): Promise<number> {
  parseBaseBackupId(id);
  if (await store.head(baseBackupObjectKey(systemIdentifier, id, BASE_BACKUP_FILES.manifest))) return 0;
  const prefix = `${baseBackupPrefix(systemIdentifier, id)}/`;
  let removed = await store.sweepInterrupted(prefix);
  for (const o of await store.list(prefix)) {
    await store.delete(o.key);
    removed++;
  }
  return removed;
}
