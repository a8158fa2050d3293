import { PassThrough, Transform, type Readable } from 'node:stream';
import { backupFileKey, backupFolderKey, isValidBackupId } from '../../common/backup';
import { FailureType, failure } from '../../common/failures';
import type { ManifestKey } from './manifest-key';
import type { BackupStore, ObjectInfo, PutOptions } from './types';

/**
 * DBOPS_BACKUP_MIRROR=local: the S3 store (the primary) with a copy of every object in a local folder
 * (the mirror), as the spec's backup.sh kept each backup in BACKUP_DIR and s3://$S3_BUCKET/backups/.
 * Reads, heads and listings come from the primary, which decides what exists; writes and deletes go
 * to both. An object is in both or in neither: the mirror's copy is committed first (a local rename,
 * invisible to listings) and the primary's upload completes only after it, so a failure on either
 * side leaves no S3 object, and a primary that fails last has the mirror's copy removed again.
 */
export class MirroredStore implements BackupStore {
  readonly kind = 's3' as const;
  readonly manifestKey: ManifestKey | undefined;

  constructor(
    readonly primary: BackupStore,
    readonly mirror: BackupStore,
  ) {
    this.manifestKey = primary.manifestKey;
  }

  /**
   * The body is read once and teed: `pipe` to two destinations pauses it while either is full, so
   * the slower side (usually S3, 8 MiB parts) sets the pace and memory stays bounded. Writing the
   * local copy first and uploading from it would add the whole upload after the dump: 256 MB from a
   * 40 MB/s producer (pg_dump | zstd) took 6.6-7.5 s teed (S3 alone 6.5-7.3 s) against 8.5-9.6 s
   * one after the other, on the dev stack's versitygw (bench: issue 18 part 4a).
   */
  async put(key: string, body: Readable, options: PutOptions = {}): Promise<{ size: number }> {
    const both = new AbortController();
    let first: { err: unknown } | undefined;
    const fail = (err: unknown) => {
      first ??= { err };
      both.abort(err);
    };
    const onAbort = () => fail(options.signal?.reason ?? new Error('put aborted'));
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
    const opts = { ...options, signal: both.signal };
    const toMirror = new PassThrough();
    const mirrored = this.mirror.put(key, toMirror, opts);
    mirrored.catch(fail);
    // The primary's stream ends only once the mirror's copy is committed: S3 never completes an
    // upload whose local copy failed.
    const toPrimary = new Transform({
      transform: (chunk: Buffer, _enc, done) => done(null, chunk),
      flush: (done) => void mirrored.then(() => done(), done),
    });
    body.once('error', (err) => {
      fail(err);
      toMirror.destroy(err);
      toPrimary.destroy(err);
    });
    body.pipe(toMirror);
    body.pipe(toPrimary);
    const primary = this.primary.put(key, toPrimary, opts);
    primary.catch(fail);
    const [m, p] = await Promise.allSettled([mirrored, primary]);
    options.signal?.removeEventListener('abort', onAbort);
    if (m.status === 'fulfilled' && p.status === 'fulfilled') {
      if (m.value.size === p.value.size) return p.value;
      first = {
        err: failure(
          FailureType.IntegrityCheckFailed,
          `${this.mirror.describe(key)} is ${m.value.size} bytes but ${this.primary.describe(key)} is ${p.value.size}: both copies were removed`,
        ),
      };
    }
    body.destroy();
    // Whichever copy became visible goes again: a backup is never good with one copy. (A delete that
    // fails here leaves an object without a manifest, which the backup's own cleanup removes.)
    if (p.status === 'fulfilled') await this.primary.delete(key).catch(() => undefined);
    if (m.status === 'fulfilled') await this.mirror.delete(key).catch(() => undefined);
    throw first?.err ?? (m.status === 'rejected' ? m.reason : (p as PromiseRejectedResult).reason);
  }

  get(key: string, range?: { start: number; end?: number }): Promise<Readable> {
    return this.primary.get(key, range);
  }

  head(key: string): Promise<ObjectInfo | undefined> {
    return this.primary.head(key);
  }

  list(prefix: string): Promise<ObjectInfo[]> {
    return this.primary.list(prefix);
  }

  /**
   * The mirror first: a primary delete that then fails leaves the object listed (from the primary)
   * with its local copy reported missing, and the next delete (prune) finishes both. The other order
   * would leave a local copy that no listing shows.
   */
  async delete(key: string): Promise<void> {
    await this.mirror.delete(key);
    await this.primary.delete(key);
  }

  async sweepInterrupted(prefix: string, startedBefore?: Date): Promise<number> {
    const local = await this.mirror.sweepInterrupted(prefix, startedBefore);
    return local + (await this.primary.sweepInterrupted(prefix, startedBefore));
  }

  async putJson(key: string, value: unknown): Promise<void> {
    await this.writeBoth(key, (store) => store.putJson(key, value));
  }

  async replaceJson(key: string, value: unknown): Promise<void> {
    await this.writeBoth(key, (store) => store.replaceJson(key, value));
  }

  /**
   * Small objects (manifests, verifications, holds, `latest`): the mirror first, so an object the
   * primary holds always has its copy; a primary write that fails puts the mirror back as it was.
   */
  private async writeBoth(key: string, write: (store: BackupStore) => Promise<void>): Promise<void> {
    const before = await this.mirror.getJson<unknown>(key).catch(() => undefined);
    await write(this.mirror);
    try {
      await write(this.primary);
    } catch (err) {
      await (before === undefined ? this.mirror.delete(key) : this.mirror.replaceJson(key, before)).catch(
        () => undefined,
      );
      throw err;
    }
  }

  getJson<T>(key: string): Promise<T | undefined> {
    return this.primary.getJson<T>(key);
  }

  async probeWritable(): Promise<void> {
    await this.mirror.probeWritable();
    await this.primary.probeWritable();
  }

  describe(key: string): string {
    return this.primary.describe(key);
  }

  async close(): Promise<void> {
    await Promise.all([this.primary.close(), this.mirror.close()]);
  }
}

/** The local copy of a store that keeps one (DBOPS_BACKUP_MIRROR=local), else undefined. */
export function mirrorOf(store: BackupStore): BackupStore | undefined {
  return store instanceof MirroredStore ? store.mirror : undefined;
}

/** How the local copy of one backup compares with the primary's objects. */
export interface LocalCopy {
  /** ok: every object of the backup is there with its size; missing: none is; damaged: some are absent or differ. */
  readonly status: 'ok' | 'missing' | 'damaged';
  /** What is absent or differs, e.g. `dump.pgcustom.zst missing` (empty when ok). */
  readonly detail: string;
  readonly location: string;
}

export interface MirrorReport {
  /** By backup id: each backup folder of the primary. */
  readonly copies: ReadonlyMap<string, LocalCopy>;
  /** Backup folders only the mirror holds (no backup in the primary): a delete that failed halfway. */
  readonly orphans: readonly string[];
}

/** Objects under `<database>/` grouped by backup folder: id -> file -> size. */
async function foldersOf(store: BackupStore, database: string): Promise<Map<string, Map<string, number>>> {
  const folders = new Map<string, Map<string, number>>();
  for (const o of await store.list(`${database}/`)) {
    const [, id, file, ...rest] = o.key.split('/');
    if (!id || !file || rest.length > 0 || !isValidBackupId(id)) continue;
    const files = folders.get(id) ?? new Map<string, number>();
    files.set(file, o.size);
    folders.set(id, files);
  }
  return folders;
}

/**
 * Compares every backup folder of `database` in the primary with its local copy, object by object
 * (presence and size; the tee wrote the same bytes to both, so a size that differs is damage).
 */
export async function compareMirror(store: MirroredStore, database: string): Promise<MirrorReport> {
  const [remote, local] = await Promise.all([
    foldersOf(store.primary, database),
    foldersOf(store.mirror, database),
  ]);
  const copies = new Map<string, LocalCopy>();
  for (const [id, files] of remote) {
    const copy = local.get(id);
    const problems: string[] = [];
    for (const [file, size] of files) {
      const localSize = copy?.get(file);
      if (localSize === undefined) problems.push(`${file} missing`);
      else if (localSize !== size) problems.push(`${file} is ${localSize} bytes, ${size} in S3`);
    }
    const missing = copy === undefined;
    copies.set(id, {
      status: problems.length === 0 ? 'ok' : missing ? 'missing' : 'damaged',
      detail: missing ? `none of its ${files.size} objects` : problems.join(', '),
      location: store.mirror.describe(backupFolderKey(database, id)),
    });
  }
  return { copies, orphans: [...local.keys()].filter((id) => !remote.has(id)).sort() };
}

/**
 * Copies back from the primary every object of `database`'s backups whose local copy is missing or
 * differs (someone deleted or truncated it), one object at a time through the mirror's atomic put;
 * returns the keys copied.
 */
export async function repairMirror(store: MirroredStore, database: string): Promise<string[]> {
  const [remote, local] = await Promise.all([
    foldersOf(store.primary, database),
    foldersOf(store.mirror, database),
  ]);
  const copied: string[] = [];
  for (const [id, files] of remote) {
    for (const [file, size] of files) {
      if (local.get(id)?.get(file) === size) continue;
      const key = backupFileKey(database, id, file);
      await store.mirror.put(key, await store.primary.get(key));
      copied.push(key);
    }
  }
  return copied;
}
