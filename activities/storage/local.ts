import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type Dirent } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FailureType, failure } from '../../common/failures';
import { checkKey } from './keys';
import type { ManifestKey } from './manifest-key';
import type { BackupStore, ObjectInfo, PutOptions } from './types';

const TEMP_MARK = '.tmp-';

/**
 * Read chunk size (Node's default is 64 KiB). Every chunk is a fresh Buffer that V8 frees only at
 * a GC, and a stream of big chunks allocates too little JS to trigger one soon: reading a 266 MB
 * archive grew the worker's RSS by ~40 MB with 64 KiB chunks and ~20 MB with 16 KiB, for ~10%
 * more CPU in the read itself (backups are read back and restored through here).
 */
const READ_CHUNK = 16 * 1024;

/** Backups in a local folder. Writes go to `<name>.tmp-<random>`, are fsynced, then renamed. */
export class LocalStore implements BackupStore {
  readonly kind = 'local' as const;

  constructor(
    readonly root: string,
    readonly manifestKey?: ManifestKey,
  ) {}

  private file(key: string): string {
    return path.join(this.root, ...checkKey(key).split('/'));
  }

  describe(key: string): string {
    return key === '' ? this.root : this.file(key);
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<{ size: number }> {
    const target = this.file(key);
    const temp = `${target}${TEMP_MARK}${randomBytes(6).toString('hex')}`;
    try {
      // In the try: a folder that cannot be made (ENOTDIR, EACCES) is the store's error, translated.
      await mkdir(path.dirname(target), { recursive: true });
      const out = createWriteStream(temp, { flags: 'wx' });
      await pipeline(body, out, { signal: options.signal });
      await syncFile(temp);
      await rename(temp, target);
      await syncDir(path.dirname(target));
      return { size: (await stat(target)).size };
    } catch (err) {
      body.destroy();
      // Not there to remove when its folder could not be made (ENOTDIR): the put's error stands.
      await rm(temp, { force: true }).catch(() => undefined);
      await this.removeEmptyFolders(temp);
      throw this.translate(err, key);
    }
  }

  async localFile(key: string): Promise<string> {
    const file = this.file(key);
    try {
      await stat(file);
    } catch (err) {
      throw this.translate(err, key);
    }
    return file;
  }

  async get(key: string, range?: { start: number; end?: number }): Promise<Readable> {
    return createReadStream(await this.localFile(key), {
      highWaterMark: READ_CHUNK,
      ...(range ? { start: range.start, end: range.end } : {}),
    });
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(this.file(key));
      return s.isFile() ? { key, size: s.size, lastModified: s.mtime } : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw this.translate(err, key);
    }
  }

  /** Calls `onFile` for every file whose key starts with `prefix` (temporary files included). */
  private async walk(prefix: string, onFile: (key: string, file: string, name: string) => Promise<void>) {
    const walk = async (dir: string, keyPrefix: string): Promise<void> => {
      let names: Dirent[];
      try {
        names = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw this.translate(err, prefix);
      }
      for (const d of names) {
        const key = `${keyPrefix}${d.name}`;
        // Only descend into folders that can contain matches.
        if (d.isDirectory() && (`${key}/`.startsWith(prefix) || prefix.startsWith(`${key}/`))) {
          await walk(path.join(dir, d.name), `${key}/`);
        } else if (d.isFile() && key.startsWith(prefix)) {
          await onFile(key, path.join(dir, d.name), d.name);
        }
      }
    };
    await walk(this.root, '');
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    await this.walk(prefix, async (key, file, name) => {
      if (name.includes(TEMP_MARK)) return;
      const s = await stat(file).catch(() => undefined);
      if (s) out.push({ key, size: s.size, lastModified: s.mtime });
    });
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * Removes temporary files under `prefix`: a worker killed mid-put leaves its `<name>.tmp-*`
   * (unlisted, but it fills the folder). With `startedBefore`, only files last written before it.
   */
  async sweepInterrupted(prefix: string, startedBefore?: Date): Promise<number> {
    let swept = 0;
    await this.walk(prefix, async (_key, file, name) => {
      if (!name.includes(TEMP_MARK)) return;
      const s = await stat(file).catch(() => undefined);
      if (!s || (startedBefore && s.mtime >= startedBefore)) return;
      await rm(file, { force: true });
      await this.removeEmptyFolders(file);
      swept++;
    });
    return swept;
  }

  async delete(key: string): Promise<void> {
    const file = this.file(key);
    await rm(file, { force: true });
    await this.removeEmptyFolders(file);
  }

  /** Removes the folders of `file` left empty, up to the root. */
  private async removeEmptyFolders(file: string): Promise<void> {
    for (
      let dir = path.dirname(file);
      dir.startsWith(this.root) && dir !== this.root;
      dir = path.dirname(dir)
    ) {
      try {
        await rmdir(dir);
      } catch {
        break;
      }
    }
  }

  async putJson(key: string, value: unknown): Promise<void> {
    await this.replaceJson(key, value);
  }

  async replaceJson(key: string, value: unknown): Promise<void> {
    const target = this.file(key);
    const temp = `${target}${TEMP_MARK}${randomBytes(6).toString('hex')}`;
    try {
      await mkdir(path.dirname(target), { recursive: true });
      const fh = await open(temp, 'wx');
      try {
        await fh.writeFile(`${JSON.stringify(value, null, 2)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(temp, target);
      await syncDir(path.dirname(target));
    } catch (err) {
      await rm(temp, { force: true });
      throw this.translate(err, key);
    }
  }

  async getJson<T>(key: string): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(this.file(key), 'utf8')) as T;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw this.translate(err, key);
    }
  }

  async probeWritable(): Promise<void> {
    const probe = path.join(this.root, `.dbops-probe${TEMP_MARK}${randomBytes(6).toString('hex')}`);
    try {
      await mkdir(this.root, { recursive: true });
      const fh = await open(probe, 'wx');
      await fh.close();
      await unlink(probe);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw failure(
        FailureType.Misconfigured,
        `backup folder ${this.root} is not writable (${code}): set DBOPS_BACKUP_DIR to a folder the worker can write`,
      );
    }
  }

  async close(): Promise<void> {}

  private translate(err: unknown, key: string): Error {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      return failure(FailureType.NotFound, `no object ${this.describe(key)} in the backup folder`);
    // Not retried: the folder does not empty itself within the activity's retries, and each retry
    // would dump the database again. The next scheduled backup tries again.
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      return failure(
        FailureType.Misconfigured,
        `backup folder ${this.root} is full (${code} writing ${key}; the partial file was removed): free space there or set DBOPS_BACKUP_DIR to a larger volume`,
      );
    }
    if (code === 'EACCES' || code === 'EROFS' || code === 'ENOTDIR' || code === 'EPERM') {
      return failure(
        FailureType.Misconfigured,
        `backup folder ${this.root} is not writable (${code} on ${key}): set DBOPS_BACKUP_DIR to a folder the worker can write`,
      );
    }
    return err instanceof Error ? err : new Error(String(err));
  }
}

async function syncFile(file: string): Promise<void> {
  const fh = await open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  try {
    await fh.sync();
  } catch {
    /* some filesystems refuse fsync on folders */
  } finally {
    await fh.close();
  }
}
