import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
// Type-only: the AWS SDK (~5–10 MB of RSS) is loaded on the first request, so a worker or CLI that
// uses the local store never loads it.
import type * as ClientS3 from '@aws-sdk/client-s3';
import type { S3Client, ServerSideEncryption, StorageClass } from '@aws-sdk/client-s3';
import type * as LibStorageModule from '@aws-sdk/lib-storage';
import { FailureType, failure } from '../../common/failures';
import { checkKey } from './keys';
import type { ManifestKey } from './manifest-key';
import type { BackupStore, ObjectInfo, PutOptions, StorageSettings } from './types';

type S3Settings = Extract<StorageSettings, { kind: 's3' }>;

type S3Sdk = typeof ClientS3;
type LibStorage = typeof LibStorageModule;
let sdkLoading: Promise<S3Sdk> | undefined;
let libStorageLoading: Promise<LibStorage> | undefined;
/** The S3 client module, loaded once per process on first use. */
function s3Sdk(): Promise<S3Sdk> {
  // dbops pins SDK 3.1175.0, the last release line for Node 20 (package.json); its start-up warning
  // that later releases need Node 22 is about releases we do not take, and every CLI command and
  // worker log would repeat it. An operator who wants it back sets the variable to false.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  sdkLoading ??= import('@aws-sdk/client-s3');
  return sdkLoading;
}
/** Multipart uploads (lib-storage), loaded on the first put. */
function libStorage(): Promise<LibStorage> {
  libStorageLoading ??= import('@aws-sdk/lib-storage');
  return libStorageLoading;
}

/** 8 MiB parts, 2 in flight: bounded memory (~16 MiB) whatever the dump size. */
const PART_SIZE = 8 * 1024 * 1024;
const QUEUE_SIZE = 2;

/**
 * Backups in an S3 bucket under a prefix. Credentials come from the worker's environment (the
 * SDK's default chain), never from settings or arguments. Big objects are multipart uploads
 * streamed from the pipeline; a failed or aborted upload is aborted, so nothing becomes visible.
 */
export class S3Store implements BackupStore {
  readonly kind = 's3' as const;
  private client: S3Client | undefined;

  readonly manifestKey: ManifestKey | undefined;

  constructor(readonly settings: S3Settings) {
    this.manifestKey = settings.manifestKey;
  }

  /** The SDK module and this store's client, both created on first use. */
  private async s3(): Promise<{ sdk: S3Sdk; client: S3Client }> {
    const sdk = await s3Sdk();
    this.client ??= new sdk.S3Client({
      region: this.settings.region,
      endpoint: this.settings.endpoint,
      forcePathStyle: this.settings.forcePathStyle,
      maxAttempts: 3,
    });
    return { sdk, client: this.client };
  }

  private objectKey(key: string): string {
    checkKey(key);
    return this.settings.prefix ? `${this.settings.prefix}/${key}` : key;
  }

  describe(key: string): string {
    if (key === '')
      return `s3://${this.settings.bucket}/${this.settings.prefix ? `${this.settings.prefix}/` : ''}`;
    return `s3://${this.settings.bucket}/${this.objectKey(key)}`;
  }

  private writeParams() {
    return {
      ServerSideEncryption: this.settings.sse as ServerSideEncryption | undefined,
      SSEKMSKeyId: this.settings.sse === 'aws:kms' ? this.settings.kmsKeyId : undefined,
      StorageClass: this.settings.storageClass as StorageClass | undefined,
    };
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<{ size: number }> {
    const objectKey = this.objectKey(key);
    // Load the SDK before touching the body (it stays paused meanwhile); an error it emits while
    // we wait fails the put like one during the upload.
    let early: { err: unknown } | undefined;
    const onEarlyError = (err: unknown) => {
      early ??= { err };
    };
    body.once('error', onEarlyError);
    let client: S3Client;
    let Upload: LibStorage['Upload'];
    try {
      [{ client }, { Upload }] = await Promise.all([this.s3(), libStorage()]);
    } catch (err) {
      body.destroy();
      throw err;
    } finally {
      body.off('error', onEarlyError);
    }
    if (early) {
      body.destroy();
      if (options.signal?.aborted) throw options.signal.reason ?? early.err;
      throw this.translate(early.err, key);
    }
    let size = 0;
    body.on('data', (chunk: Buffer) => {
      size += chunk.length;
    });
    const upload = new Upload({
      client,
      params: {
        Bucket: this.settings.bucket,
        Key: objectKey,
        Body: body,
        ContentType: options.contentType ?? 'application/octet-stream',
        ...this.writeParams(),
      },
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false,
    });
    const onAbort = () => void upload.abort().catch(() => undefined);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    // A failing source must fail the upload too (lib-storage otherwise waits for more data).
    const sourceFailed = new Promise<never>((_, reject) =>
      body.once('error', (err) => {
        void upload.abort().catch(() => undefined);
        reject(err);
      }),
    );
    try {
      await Promise.race([upload.done(), sourceFailed]);
      return { size };
    } catch (err) {
      await upload.abort().catch(() => undefined);
      body.destroy();
      await this.abortedForGood(upload, objectKey);
      if (options.signal?.aborted) throw options.signal.reason ?? err;
      throw this.translate(err, key);
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  async get(key: string, range?: { start: number; end?: number }): Promise<Readable> {
    try {
      const { sdk, client } = await this.s3();
      const r = await client.send(
        new sdk.GetObjectCommand({
          Bucket: this.settings.bucket,
          Key: this.objectKey(key),
          Range: range ? `bytes=${range.start}-${range.end ?? ''}` : undefined,
        }),
      );
      return r.Body as Readable;
    } catch (err) {
      throw this.translate(err, key);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const { sdk, client } = await this.s3();
      const r = await client.send(
        new sdk.HeadObjectCommand({ Bucket: this.settings.bucket, Key: this.objectKey(key) }),
      );
      return { key, size: r.ContentLength ?? 0, lastModified: r.LastModified ?? new Date(0) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.translate(err, key);
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const root = this.settings.prefix ? `${this.settings.prefix}/` : '';
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    try {
      const { sdk, client } = await this.s3();
      do {
        const r = await client.send(
          new sdk.ListObjectsV2Command({
            Bucket: this.settings.bucket,
            Prefix: `${root}${prefix}`,
            ContinuationToken: token,
          }),
        );
        for (const o of r.Contents ?? []) {
          if (!o.Key) continue;
          out.push({
            key: o.Key.slice(root.length),
            size: o.Size ?? 0,
            lastModified: o.LastModified ?? new Date(0),
          });
        }
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw this.translate(err, prefix);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    try {
      const { sdk, client } = await this.s3();
      await client.send(
        new sdk.DeleteObjectCommand({ Bucket: this.settings.bucket, Key: this.objectKey(key) }),
      );
    } catch (err) {
      if (!isNotFound(err)) throw this.translate(err, key);
    }
  }

  /**
   * Aborts multipart uploads under `prefix` that were never completed: a worker killed mid-upload
   * (SIGKILL, OOM, a lost node) cannot abort its own, and S3 keeps the parts until someone does.
   */
  async sweepInterrupted(prefix: string, startedBefore?: Date): Promise<number> {
    const root = this.settings.prefix ? `${this.settings.prefix}/` : '';
    let swept = 0;
    try {
      const { sdk, client } = await this.s3();
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      do {
        const r = await client.send(
          new sdk.ListMultipartUploadsCommand({
            Bucket: this.settings.bucket,
            Prefix: `${root}${prefix}`,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        );
        for (const u of r.Uploads ?? []) {
          if (!u.Key || !u.UploadId) continue;
          if (startedBefore && !(u.Initiated && u.Initiated < startedBefore)) continue;
          try {
            await client.send(
              new sdk.AbortMultipartUploadCommand({
                Bucket: this.settings.bucket,
                Key: u.Key,
                UploadId: u.UploadId,
              }),
            );
            swept++;
          } catch (err) {
            if (!isNotFound(err) && (err as { name?: string }).name !== 'NoSuchUpload') throw err;
          }
        }
        const more = r.IsTruncated === true;
        keyMarker = more ? r.NextKeyMarker : undefined;
        uploadIdMarker = more ? r.NextUploadIdMarker : undefined;
      } while (keyMarker);
    } catch (err) {
      throw this.translate(err, prefix);
    }
    return swept;
  }

  /**
   * An aborted Upload rejects at once, while its part uploaders run on and abort the multipart
   * upload only when they end (lib-storage 3.1175: `done()` races them with the abort signal). A put
   * that failed must leave nothing, so this waits for them, then aborts the upload itself (a second
   * abort after lib-storage's own answers NoSuchUpload, which is fine). Without the wait a caller
   * could see a stored multipart upload after the put rejected.
   */
  private async abortedForGood(upload: InstanceType<LibStorage['Upload']>, objectKey: string): Promise<void> {
    const internals = upload as unknown as { concurrentUploaders?: Promise<unknown>[]; uploadId?: string };
    await Promise.allSettled(internals.concurrentUploaders ?? []);
    if (!internals.uploadId) return;
    const { sdk, client } = await this.s3();
    await client
      .send(
        new sdk.AbortMultipartUploadCommand({
          Bucket: this.settings.bucket,
          Key: objectKey,
          UploadId: internals.uploadId,
        }),
      )
      .catch(() => undefined);
  }

  async putJson(key: string, value: unknown): Promise<void> {
    await this.replaceJson(key, value);
  }

  /** A single PutObject replaces an object atomically. */
  async replaceJson(key: string, value: unknown): Promise<void> {
    try {
      const { sdk, client } = await this.s3();
      await client.send(
        new sdk.PutObjectCommand({
          Bucket: this.settings.bucket,
          Key: this.objectKey(key),
          Body: `${JSON.stringify(value, null, 2)}\n`,
          ContentType: 'application/json',
          ...this.writeParams(),
        }),
      );
    } catch (err) {
      throw this.translate(err, key);
    }
  }

  async getJson<T>(key: string): Promise<T | undefined> {
    try {
      const { sdk, client } = await this.s3();
      const r = await client.send(
        new sdk.GetObjectCommand({ Bucket: this.settings.bucket, Key: this.objectKey(key) }),
      );
      return JSON.parse(await (r.Body as { transformToString(): Promise<string> }).transformToString()) as T;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.translate(err, key);
    }
  }

  async probeWritable(): Promise<void> {
    try {
      const { sdk, client } = await this.s3();
      await client.send(new sdk.HeadBucketCommand({ Bucket: this.settings.bucket }));
    } catch (err) {
      if (isNotFound(err)) {
        throw failure(
          FailureType.Misconfigured,
          `S3 bucket ${this.settings.bucket} does not exist at ${this.settings.endpoint ?? 'AWS'}: create it or fix DBOPS_S3_BUCKET`,
        );
      }
      throw this.translate(err, '');
    }
    const probe = `.dbops-probe-${randomBytes(6).toString('hex')}`;
    await this.replaceJson(probe, { probe: true });
    await this.delete(probe);
  }

  async close(): Promise<void> {
    this.client?.destroy();
    this.client = undefined;
  }

  private translate(err: unknown, key: string): Error {
    const e = err as {
      name?: string;
      message?: string;
      code?: string;
      $metadata?: { httpStatusCode?: number };
    };
    const where = this.describe(key);
    if (e.name === 'NoSuchBucket') {
      return failure(
        FailureType.Misconfigured,
        `S3 bucket ${this.settings.bucket} does not exist: create it or fix DBOPS_S3_BUCKET`,
      );
    }
    if (isNotFound(err)) return failure(FailureType.NotFound, `no object ${where}`);
    const status = e.$metadata?.httpStatusCode;
    if (
      status === 403 ||
      e.name === 'AccessDenied' ||
      e.name === 'InvalidAccessKeyId' ||
      e.name === 'SignatureDoesNotMatch'
    ) {
      return failure(
        FailureType.Misconfigured,
        `S3 refused access to ${where} (${e.name}): check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY of the worker and the bucket policy`,
      );
    }
    return failure(
      FailureType.Unavailable,
      `S3 request for ${where} failed: ${e.name ?? 'error'}: ${e.message ?? String(err)}`,
    );
  }
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}
