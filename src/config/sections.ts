/**
 * Parts of the configuration built from several variables: the backup store, the verification
 * server, the payload keys. Each fails with a ConfigError naming the variables and the fix.
 */
import path from 'node:path';
import { readPayloadKeys, type PayloadKeyring } from '../codec/keys';
import { ConfigError } from './errors';
import type { Config, PgSettings } from './index';
import type { Parsed } from './variables';

/** The payload key file, read once with the config: a bad file fails every command naming the variable. */
export function payloadKeys(file: string): PayloadKeyring {
  try {
    return readPayloadKeys(path.resolve(file));
  } catch (err) {
    throw new ConfigError([`DBOPS_PAYLOAD_KEYS=${file}: ${(err as Error).message}`]);
  }
}

const VERIFY_SERVER_VARIABLES = [
  'DBOPS_VERIFY_PGPORT',
  'DBOPS_VERIFY_PGUSER',
  'DBOPS_VERIFY_PGPASSWORD',
  'DBOPS_VERIFY_PGPASSFILE',
  'DBOPS_VERIFY_PGDATABASE',
  'DBOPS_VERIFY_PGSSLMODE',
] as const;

/**
 * The backup store: S3 when a bucket is set (or DBOPS_STORAGE=s3), else a local folder. The folder
 * (DBOPS_BACKUP_DIR) is the local store, or with DBOPS_BACKUP_MIRROR=local the S3 store's copy.
 */
export function storageSettings(v: Parsed, stackHome: string): Config['storage'] {
  const storageKind = v.DBOPS_STORAGE ?? (v.DBOPS_S3_BUCKET ? 's3' : 'local');
  if (storageKind === 's3' && !v.DBOPS_S3_BUCKET) {
    throw new ConfigError([
      'DBOPS_STORAGE=s3 needs DBOPS_S3_BUCKET: set the bucket name, or use DBOPS_STORAGE=local',
    ]);
  }
  if (v.DBOPS_BACKUP_MIRROR === 'local' && storageKind !== 's3') {
    throw new ConfigError([
      `DBOPS_BACKUP_MIRROR=local keeps a local copy of an S3 store, but the store is the local folder${v.DBOPS_STORAGE === 'local' ? ' (DBOPS_STORAGE=local)' : ' (DBOPS_S3_BUCKET is unset)'}: set DBOPS_S3_BUCKET to the bucket (the copy stays in DBOPS_BACKUP_DIR), or unset DBOPS_BACKUP_MIRROR`,
    ]);
  }
  const dir = path.resolve(v.DBOPS_BACKUP_DIR ?? path.join(stackHome, 'backups'));
  if (v.DBOPS_S3_SSE === 'aws:kms' && !v.DBOPS_S3_KMS_KEY_ID) {
    throw new ConfigError(['DBOPS_S3_SSE=aws:kms needs DBOPS_S3_KMS_KEY_ID (the KMS key id or ARN)']);
  }
  return storageKind === 's3'
    ? {
        kind: 's3',
        bucket: v.DBOPS_S3_BUCKET as string,
        endpoint: v.DBOPS_S3_ENDPOINT,
        region: v.DBOPS_S3_REGION,
        prefix: v.DBOPS_S3_PREFIX.replace(/^\/+|\/+$/g, ''),
        forcePathStyle: v.DBOPS_S3_FORCE_PATH_STYLE ?? Boolean(v.DBOPS_S3_ENDPOINT),
        sse: v.DBOPS_S3_SSE,
        kmsKeyId: v.DBOPS_S3_KMS_KEY_ID,
        storageClass: v.DBOPS_S3_STORAGE_CLASS,
        ...(v.DBOPS_BACKUP_MIRROR === 'local' && { mirror: { kind: 'local', dir } }),
      }
    : { kind: 'local', dir };
}

/**
 * DBOPS_VERIFY_PGHOST names the verification server; each other DBOPS_VERIFY_PG* falls back to its
 * PG* counterpart, except the password (the production password is never sent to another server:
 * DBOPS_VERIFY_PGPASSWORD or the passfile) and the database (default postgres, which every server has).
 */
export function verificationServer(v: Parsed, pg: PgSettings): PgSettings | undefined {
  if (v.DBOPS_VERIFY_PGHOST === undefined) {
    const stray = VERIFY_SERVER_VARIABLES.filter((name) => v[name] !== undefined);
    if (stray.length === 0) return undefined;
    throw new ConfigError([
      `${stray.join(', ')} set without DBOPS_VERIFY_PGHOST: set DBOPS_VERIFY_PGHOST to the verification server's host, or unset them to verify on the PG* server`,
    ]);
  }
  return {
    host: v.DBOPS_VERIFY_PGHOST,
    port: v.DBOPS_VERIFY_PGPORT ?? pg.port,
    user: v.DBOPS_VERIFY_PGUSER ?? pg.user,
    database: v.DBOPS_VERIFY_PGDATABASE ?? 'postgres',
    sslmode: v.DBOPS_VERIFY_PGSSLMODE ?? pg.sslmode,
    ssl: pg.ssl,
    passfile: v.DBOPS_VERIFY_PGPASSFILE ?? pg.passfile,
    password: v.DBOPS_VERIFY_PGPASSWORD,
    binDir: pg.binDir,
  };
}
