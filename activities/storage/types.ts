import type { Readable } from 'node:stream';
import type { ManifestKey } from './manifest-key';

/**
 * The store's manifest policy, set by the worker (src/worker/activities.ts) from DBOPS_MANIFEST_KEY:
 * with a key, manifests written are signed and manifests loaded must carry its signature.
 */
interface ManifestTrust {
  readonly manifestKey?: ManifestKey;
  /** DBOPS_BACKUP_AGE_*: archives written are encrypted for the recipients, read with the identity. */
  readonly age?: AgeSettings;
}

/** Client-side archive encryption (activities/postgres/age.ts). */
export interface AgeSettings {
  /** The age binary (DBOPS_AGE_BIN). */
  readonly bin: string;
  /** age1… public keys: new backups are encrypted for all of them; empty: backups stay plain. */
  readonly recipients: readonly string[];
  /** The identity file that decrypts (DBOPS_BACKUP_AGE_IDENTITY); without it encrypted backups cannot be read here. */
  readonly identityFile?: string;
}

/** Where backups live: a local folder (the embedded stack's default) or an S3 bucket. */
export type StorageSettings =
  | (ManifestTrust & { readonly kind: 'local'; readonly dir: string })
  | (ManifestTrust & {
      readonly kind: 's3';
      readonly bucket: string;
      readonly endpoint: string | undefined;
      readonly region: string;
      readonly prefix: string;
      readonly forcePathStyle: boolean;
      readonly sse: 'AES256' | 'aws:kms' | undefined;
      readonly kmsKeyId: string | undefined;
      readonly storageClass: string | undefined;
      /** DBOPS_BACKUP_MIRROR=local: every object is also kept in this folder (mirror.ts). */
      readonly mirror?: { readonly kind: 'local'; readonly dir: string };
    });

export interface PutOptions {
  readonly contentType?: string;
  /** Aborting removes everything written so far: nothing becomes visible. */
  readonly signal?: AbortSignal;
}

export interface ObjectInfo {
  /** Key relative to the store's root (no prefix). */
  readonly key: string;
  readonly size: number;
  readonly lastModified: Date;
}

/**
 * A flat key/value object store. Keys are `a/b/c` relative to the root (the S3 prefix or the
 * local folder); `..`, absolute and empty segments are refused. An object becomes visible only
 * when `put` resolves: a failed or aborted put leaves nothing (temp name + rename locally,
 * aborted multipart upload on S3).
 */
export interface BackupStore {
  readonly kind: 'local' | 's3';
  /** From the settings: signs the manifests written, and loadManifest requires its signature. */
  readonly manifestKey?: ManifestKey;
  /** Streams `body` into `key`; resolves with the stored size. */
  put(key: string, body: Readable, options?: PutOptions): Promise<{ size: number }>;
  /** The object's bytes; `range` is inclusive like HTTP Range. Rejects with NotFound. */
  get(key: string, range?: { start: number; end?: number }): Promise<Readable>;
  head(key: string): Promise<ObjectInfo | undefined>;
  /**
   * The object's path on this machine when the store is a local folder (rejects with NotFound like
   * `get`), so tools such as zstd read it themselves instead of through a Node stream.
   */
  localFile?(key: string): Promise<string>;
  /** Objects whose key starts with `prefix`, sorted by key. */
  list(prefix: string): Promise<ObjectInfo[]>;
  /** Deletes one object; a missing one is fine. */
  delete(key: string): Promise<void>;
  /**
   * Removes what interrupted puts left under `prefix` and returns how many: S3 multipart uploads
   * never completed (unlisted, but their parts are stored and billed), local temporary files. A put
   * still running there then fails instead of completing, so callers sweep only where no other
   * writer can be: a backup's own folder, or leftovers started before `startedBefore`.
   */
  sweepInterrupted(prefix: string, startedBefore?: Date): Promise<number>;
  putJson(key: string, value: unknown): Promise<void>;
  getJson<T>(key: string): Promise<T | undefined>;
  /** Replaces a small object atomically: readers see the old or the new content, never a mix. */
  replaceJson(key: string, value: unknown): Promise<void>;
  /** Proves we can write here (writes and deletes a probe object); throws Misconfigured with the fix. */
  probeWritable(): Promise<void>;
  /** Human location of a key: `/path/to/file` or `s3://bucket/prefix/key`. */
  describe(key: string): string;
  close(): Promise<void>;
}
