/**
 * Where the spec's backups are: a folder (its BACKUP_DIR) or an S3 prefix (its
 * s3://$S3_BUCKET/backups/). Only the top level is read: the spec wrote its files flat, and a
 * dbops store in the same place keeps its backups in folders below, which are not the spec's.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { FailureType, failure } from '../../../common/failures';
import { createBackupStore, type BackupStore, type StorageSettings } from '../../storage';

export interface SourceFile {
  readonly name: string;
  readonly size: number;
  /** A symbolic link (the spec's `<db>_latest.sql.gz`): never adopted, reported. */
  readonly link: boolean;
}

export interface AdoptSource {
  /** `/backups` or `s3://bucket/backups`: where the report says the files are. */
  readonly location: string;
  list(): Promise<SourceFile[]>;
  open(name: string): Promise<Readable>;
  describe(name: string): string;
  close(): Promise<void>;
}

/**
 * The source `from` names (a folder, or `s3://bucket[/prefix]` read with the store's S3 settings),
 * or by default the store's own root, where the spec's variables point dbops' store.
 */
export function openSource(from: string | undefined, storage: StorageSettings): AdoptSource {
  if (from === undefined) return storage.kind === 'local' ? folderSource(storage.dir) : s3Source(storage);
  if (!from.startsWith('s3://')) return folderSource(path.resolve(from));
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(from);
  if (!m)
    throw failure(
      FailureType.InvalidInput,
      `--from ${from} is not s3://<bucket>[/<prefix>], e.g. s3://recsys-backups/backups`,
    );
  if (storage.kind !== 's3')
    throw failure(
      FailureType.Misconfigured,
      `--from ${from} is read with the S3 settings of the backup store, and the store is a local folder: set DBOPS_S3_BUCKET (and DBOPS_S3_ENDPOINT, AWS credentials) to adopt into S3, or copy the files to a folder and pass --from <folder>`,
    );
  const { manifestKey: _none, ...s3 } = storage;
  return s3Source({ ...s3, bucket: m[1]!, prefix: m[2]!.replace(/\/+$/, '') });
}

function folderSource(dir: string): AdoptSource {
  return {
    location: dir,
    async list() {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        throw failure(
          (err as NodeJS.ErrnoException).code === 'ENOENT' ? FailureType.NotFound : FailureType.Misconfigured,
          `cannot read the folder ${dir} (${(err as Error).message}): pass the spec's BACKUP_DIR with --from`,
        );
      }
      const files: SourceFile[] = [];
      for (const e of entries) {
        if (!e.isFile() && !e.isSymbolicLink()) continue;
        const s = await stat(path.join(dir, e.name)).catch(() => undefined);
        files.push({ name: e.name, size: s?.size ?? 0, link: e.isSymbolicLink() });
      }
      return files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },
    open: (name) => Promise.resolve(createReadStream(path.join(dir, name))),
    describe: (name) => path.join(dir, name),
    close: () => Promise.resolve(),
  };
}

function s3Source(settings: Extract<StorageSettings, { kind: 's3' }>): AdoptSource {
  const store: BackupStore = createBackupStore(settings);
  return {
    location: store.describe('').replace(/\/$/, ''),
    async list() {
      const objects = await store.list('');
      return objects
        .filter((o) => !o.key.includes('/'))
        .map((o) => ({ name: o.key, size: o.size, link: false }));
    },
    open: (name) => store.get(name),
    describe: (name) => store.describe(name),
    close: () => store.close(),
  };
}
