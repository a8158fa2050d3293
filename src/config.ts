import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DATABASE_NAME, DATABASE_NAME_RULE } from '../common/names';
import { z } from 'zod';
import type { PgConnectionSettings } from '../activities/postgres/connection';
import type { StorageSettings } from '../activities/storage/types';
import {
  BACKUP_COMPRESSIONS,
  BACKUP_FORMATS,
  type BackupCompression,
  type BackupFormat,
} from '../common/backup';

/**
 * dbops configuration: parsed and validated once, frozen, failing fast with the variable's name.
 * PostgreSQL uses the standard libpq variables (or DATABASE_URL) so that `pg` and pg_dump see the
 * same settings and the password never reaches a command line; everything else is DBOPS_*.
 * Defaults point at the dev stack (`npm run stack -- up`), whose stack.env.json fills in the
 * machine-specific paths (PostgreSQL bin dir).
 */

export const REPO_ROOT = path.resolve(
  __dirname,
  '..',
  __dirname.includes(`${path.sep}dist${path.sep}`) ? '..' : '',
);

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

const identifier = z.string().regex(DATABASE_NAME, `must be a PostgreSQL name: ${DATABASE_NAME_RULE}`);
const port = z.coerce.number().int().min(1).max(65535);
const positiveInt = z.coerce.number().int().positive();
const nonNegativeInt = z.coerce.number().int().min(0);
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const hostPort = z.string().regex(/^[^\s:/]+:\d{1,5}$/, 'must be host:port, e.g. 127.0.0.1:7233');
const url = z.url({ message: 'must be a URL like http://host:port' });
const duration = z
  .string()
  .regex(/^\d+(\.\d+)?\s*(ms|s|m|h|d)$/, 'must be a duration like 30s, 15m, 24h or 7d')
  .transform(parseDurationMs);
const csv = (item: z.ZodType<string>) =>
  z.string().transform((s, ctx) => {
    const values = s
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean);
    for (const v of values) {
      const r = item.safeParse(v);
      if (!r.success)
        ctx.addIssue({ code: 'custom', message: `"${v}": ${r.error.issues[0]?.message ?? 'invalid'}` });
    }
    return values;
  });

export function parseDurationMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) throw new Error(`not a duration: ${text}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
    m[2] as 'ms' | 's' | 'm' | 'h' | 'd'
  ];
  return Math.round(Number(m[1]) * unit);
}

/** Every variable dbops reads, with its schema. Order is the order `dbops config` prints. */
const variables = {
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must start with postgres:// or postgresql://')
    .optional(),
  PGHOST: z.string().min(1).default('127.0.0.1'),
  PGPORT: port.default(55432),
  PGUSER: z.string().min(1).default('postgres'),
  PGPASSWORD: z.string().optional(),
  PGPASSFILE: z.string().optional(),
  PGDATABASE: identifier.default('recsys'),
  PGSSLMODE: z.enum(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']).optional(),
  DBOPS_PG_BIN_DIR: z.string().optional(),
  DBOPS_DATABASES: csv(identifier).optional(),
  DBOPS_APP_ROLE: identifier.default('recsys_app'),

  DBOPS_TEMPORAL_ADDRESS: hostPort.default('127.0.0.1:17233'),
  DBOPS_TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  DBOPS_TASK_QUEUE: z.string().min(1).default('dbops'),
  DBOPS_TEMPORAL_UI_URL: url.default('http://127.0.0.1:18233'),
  DBOPS_TEMPORAL_TLS: bool.default(false),
  DBOPS_TEMPORAL_API_KEY: z.string().optional(),

  DBOPS_MILVUS_ADDRESS: hostPort.default('127.0.0.1:19531'),
  DBOPS_MILVUS_TOKEN: z.string().optional(),
  DBOPS_MILVUS_DIM: positiveInt.max(32768).default(256),
  DBOPS_MILVUS_METRIC: z.enum(['COSINE', 'IP', 'L2']).default('COSINE'),
  DBOPS_MILVUS_INDEX: z.enum(['HNSW', 'IVF_FLAT']).default('HNSW'),

  DBOPS_STORAGE: z.enum(['local', 's3']).optional(),
  DBOPS_BACKUP_DIR: z.string().min(1).optional(),
  DBOPS_S3_BUCKET: z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
      'must be an S3 bucket name (lowercase, digits, dots, dashes)',
    )
    .optional(),
  DBOPS_S3_ENDPOINT: url.optional(),
  DBOPS_S3_REGION: z.string().min(1).default('us-east-1'),
  DBOPS_S3_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9._/-]*$/, 'must contain only letters, digits, . _ / -')
    .refine((s) => !s.split('/').includes('..'), 'must not contain ..')
    .default('backups'),
  DBOPS_S3_FORCE_PATH_STYLE: bool.optional(),
  DBOPS_S3_SSE: z.enum(['AES256', 'aws:kms']).optional(),
  DBOPS_S3_KMS_KEY_ID: z.string().optional(),
  DBOPS_S3_STORAGE_CLASS: z
    .enum([
      'STANDARD',
      'STANDARD_IA',
      'ONEZONE_IA',
      'INTELLIGENT_TIERING',
      'GLACIER_IR',
      'REDUCED_REDUNDANCY',
    ])
    .optional(),

  DBOPS_BACKUP_FORMAT: z.enum(BACKUP_FORMATS).default('custom'),
  DBOPS_BACKUP_COMPRESSION: z.enum(BACKUP_COMPRESSIONS).default('zstd'),
  DBOPS_RETENTION_DAYS: positiveInt.default(30),
  DBOPS_RETENTION_MIN_KEEP: positiveInt.default(7),
  DBOPS_MAX_CONCURRENT_DUMPS: positiveInt.default(1),
  DBOPS_BACKUP_TIME: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (24 h)')
    .default('03:00'),
  DBOPS_SCHEDULE_TIMEZONE: z.string().min(1).default('UTC'),

  DBOPS_RESTORE_APPROVAL_TIMEOUT: duration.default(parseDurationMs('24h')),
  DBOPS_RESTORE_FOUR_EYES: bool.default(false),
  DBOPS_RESTORE_KEEP_DAYS: nonNegativeInt.default(7),
  DBOPS_RESTORE_JOBS: positiveInt.max(64).default(2),

  DBOPS_MIGRATIONS_DIR: z.string().min(1).optional(),
  DBOPS_MIGRATION_LOCK_TIMEOUT: duration.default(parseDurationMs('10s')),
  DBOPS_MIGRATION_STATEMENT_TIMEOUT: duration.default(parseDurationMs('0s')),

  DBOPS_PARTITION_PREMAKE_MONTHS: nonNegativeInt.max(60).default(3),
  DBOPS_PARTITION_RETENTION_MONTHS: positiveInt.max(600).default(13),
  DBOPS_PARTITION_RETENTION_MODE: z.enum(['drop', 'detach']).default('drop'),
  DBOPS_PARTITION_MAINTENANCE_TIME: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (24 h)')
    .default('04:30'),

  DBOPS_SLACK_WEBHOOK_URL: url.optional(),
  DBOPS_HTTP_PORT: port.optional(),
  DBOPS_STACK_HOME: z.string().optional(),
} as const;

type Variables = typeof variables;
type VariableName = keyof Variables;
type Parsed = { [K in VariableName]: z.output<Variables[K]> };

/** Values never printed, logged or passed to a workflow. */
export const SECRET_VARIABLES: ReadonlySet<string> = new Set([
  'PGPASSWORD',
  'DATABASE_URL',
  'DBOPS_TEMPORAL_API_KEY',
  'DBOPS_MILVUS_TOKEN',
  'DBOPS_SLACK_WEBHOOK_URL',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
]);

export type PgSettings = PgConnectionSettings;

export interface Config {
  readonly source: Readonly<Record<string, 'env' | 'stack' | 'default'>>;
  readonly pg: PgSettings;
  /** Databases that get backups and schedules. */
  readonly databases: readonly string[];
  /** Application role `dbops db init` creates and makes owner of the database. */
  readonly appRole: string;
  readonly temporal: {
    readonly address: string;
    readonly namespace: string;
    readonly taskQueue: string;
    readonly uiUrl: string;
    readonly tls: boolean;
    readonly apiKey: string | undefined;
  };
  readonly milvus: {
    readonly address: string;
    readonly token: string | undefined;
    readonly dim: number;
    readonly metric: 'COSINE' | 'IP' | 'L2';
    readonly indexType: 'HNSW' | 'IVF_FLAT';
  };
  readonly storage: StorageSettings;
  readonly backup: {
    readonly format: BackupFormat;
    readonly compression: BackupCompression;
    readonly retentionDays: number;
    readonly minKeep: number;
    readonly maxConcurrentDumps: number;
    readonly scheduleTime: string;
    readonly timezone: string;
  };
  readonly restore: {
    readonly approvalTimeoutMs: number;
    readonly fourEyes: boolean;
    readonly keepDays: number;
    readonly jobs: number;
  };
  readonly migrations: {
    readonly dir: string;
    readonly lockTimeoutMs: number;
    readonly statementTimeoutMs: number;
  };
  readonly partitions: {
    readonly premakeMonths: number;
    readonly retentionMonths: number;
    readonly retentionMode: 'drop' | 'detach';
    /** HH:MM (DBOPS_SCHEDULE_TIMEZONE) of the daily partition maintenance. */
    readonly maintenanceTime: string;
  };
  readonly slackWebhookUrl: string | undefined;
  readonly httpPort: number | undefined;
  readonly stackHome: string;
}

/** Settings the dev stack writes for itself; storage is left out on purpose (local is the dev default). */
const STACK_DEFAULTABLE = new Set<string>([
  'PGHOST',
  'PGPORT',
  'PGUSER',
  'PGDATABASE',
  'DBOPS_PG_BIN_DIR',
  'DBOPS_TEMPORAL_ADDRESS',
  'DBOPS_TEMPORAL_UI_URL',
  'DBOPS_MILVUS_ADDRESS',
]);

function readStackDefaults(stackHome: string): Record<string, string> {
  const file = path.join(stackHome, 'stack.env.json');
  if (!existsSync(file)) return {};
  try {
    const all = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    return Object.fromEntries(
      Object.entries(all).filter(
        (e): e is [string, string] => STACK_DEFAULTABLE.has(e[0]) && typeof e[1] === 'string',
      ),
    );
  } catch {
    return {};
  }
}

function fromDatabaseUrl(raw: string): Partial<Record<VariableName, string>> {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError([
      'DATABASE_URL: is not a valid URL (expected postgres://user:password@host:port/db)',
    ]);
  }
  const out: Partial<Record<VariableName, string>> = {};
  if (u.hostname) out.PGHOST = decodeURIComponent(u.hostname);
  if (u.port) out.PGPORT = u.port;
  if (u.username) out.PGUSER = decodeURIComponent(u.username);
  if (u.password) out.PGPASSWORD = decodeURIComponent(u.password);
  const db = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (db) out.PGDATABASE = db;
  const sslmode = u.searchParams.get('sslmode');
  if (sslmode) out.PGSSLMODE = sslmode;
  return out;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const stackHome = env.DBOPS_STACK_HOME || path.join(REPO_ROOT, '.stack');
  const stack = readStackDefaults(stackHome);
  const fromUrl = env.DATABASE_URL ? fromDatabaseUrl(env.DATABASE_URL) : {};
  const raw: Record<string, string | undefined> = {};
  const source: Record<string, 'env' | 'stack' | 'default'> = {};
  for (const name of Object.keys(variables) as VariableName[]) {
    const envValue = env[name] === '' ? undefined : env[name];
    const value = envValue ?? fromUrl[name] ?? stack[name];
    raw[name] = value;
    source[name] =
      envValue !== undefined || fromUrl[name] !== undefined
        ? 'env'
        : value !== undefined
          ? 'stack'
          : 'default';
  }

  const problems: string[] = [];
  const parsed = {} as Record<string, unknown>;
  for (const [name, schema] of Object.entries(variables) as [VariableName, z.ZodType][]) {
    const r = schema.safeParse(raw[name]);
    if (r.success) parsed[name] = r.data;
    else {
      const shown = SECRET_VARIABLES.has(name) ? '<redacted>' : JSON.stringify(raw[name]);
      problems.push(`${name}=${shown}: ${r.error.issues.map((i) => i.message).join('; ')}`);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  const v = parsed as Parsed;

  const storageKind = v.DBOPS_STORAGE ?? (v.DBOPS_S3_BUCKET ? 's3' : 'local');
  if (storageKind === 's3' && !v.DBOPS_S3_BUCKET) {
    throw new ConfigError([
      'DBOPS_STORAGE=s3 needs DBOPS_S3_BUCKET: set the bucket name, or use DBOPS_STORAGE=local',
    ]);
  }
  if (v.DBOPS_S3_SSE === 'aws:kms' && !v.DBOPS_S3_KMS_KEY_ID) {
    throw new ConfigError(['DBOPS_S3_SSE=aws:kms needs DBOPS_S3_KMS_KEY_ID (the KMS key id or ARN)']);
  }
  const storage: Config['storage'] =
    storageKind === 's3'
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
        }
      : { kind: 'local', dir: path.resolve(v.DBOPS_BACKUP_DIR ?? path.join(stackHome, 'backups')) };

  const config: Config = {
    source,
    pg: {
      host: v.PGHOST,
      port: v.PGPORT,
      user: v.PGUSER,
      database: v.PGDATABASE,
      sslmode: v.PGSSLMODE,
      passfile: v.PGPASSFILE,
      password: v.PGPASSWORD,
      binDir: v.DBOPS_PG_BIN_DIR,
    },
    databases: v.DBOPS_DATABASES?.length ? v.DBOPS_DATABASES : [v.PGDATABASE],
    appRole: v.DBOPS_APP_ROLE,
    temporal: {
      address: v.DBOPS_TEMPORAL_ADDRESS,
      namespace: v.DBOPS_TEMPORAL_NAMESPACE,
      taskQueue: v.DBOPS_TASK_QUEUE,
      uiUrl: v.DBOPS_TEMPORAL_UI_URL.replace(/\/+$/, ''),
      tls: v.DBOPS_TEMPORAL_TLS || Boolean(v.DBOPS_TEMPORAL_API_KEY),
      apiKey: v.DBOPS_TEMPORAL_API_KEY,
    },
    milvus: {
      address: v.DBOPS_MILVUS_ADDRESS,
      token: v.DBOPS_MILVUS_TOKEN,
      dim: v.DBOPS_MILVUS_DIM,
      metric: v.DBOPS_MILVUS_METRIC,
      indexType: v.DBOPS_MILVUS_INDEX,
    },
    storage,
    backup: {
      format: v.DBOPS_BACKUP_FORMAT,
      compression: v.DBOPS_BACKUP_COMPRESSION,
      retentionDays: v.DBOPS_RETENTION_DAYS,
      minKeep: v.DBOPS_RETENTION_MIN_KEEP,
      maxConcurrentDumps: v.DBOPS_MAX_CONCURRENT_DUMPS,
      scheduleTime: v.DBOPS_BACKUP_TIME,
      timezone: v.DBOPS_SCHEDULE_TIMEZONE,
    },
    restore: {
      approvalTimeoutMs: v.DBOPS_RESTORE_APPROVAL_TIMEOUT,
      fourEyes: v.DBOPS_RESTORE_FOUR_EYES,
      keepDays: v.DBOPS_RESTORE_KEEP_DAYS,
      jobs: v.DBOPS_RESTORE_JOBS,
    },
    migrations: {
      dir: path.resolve(v.DBOPS_MIGRATIONS_DIR ?? path.join(REPO_ROOT, 'migrations')),
      lockTimeoutMs: v.DBOPS_MIGRATION_LOCK_TIMEOUT,
      statementTimeoutMs: v.DBOPS_MIGRATION_STATEMENT_TIMEOUT,
    },
    partitions: {
      premakeMonths: v.DBOPS_PARTITION_PREMAKE_MONTHS,
      retentionMonths: v.DBOPS_PARTITION_RETENTION_MONTHS,
      retentionMode: v.DBOPS_PARTITION_RETENTION_MODE,
      maintenanceTime: v.DBOPS_PARTITION_MAINTENANCE_TIME,
    },
    slackWebhookUrl: v.DBOPS_SLACK_WEBHOOK_URL,
    httpPort: v.DBOPS_HTTP_PORT,
    stackHome,
  };
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** The effective settings as `NAME value (source)` rows, secrets redacted, for `dbops config`. */
export function describeConfig(config: Config, env: NodeJS.ProcessEnv = process.env) {
  const rows: { name: string; value: string; source: string }[] = [];
  const effective: Record<string, string | number | boolean | undefined> = {
    PGHOST: config.pg.host,
    PGPORT: config.pg.port,
    PGUSER: config.pg.user,
    PGPASSWORD: config.pg.password,
    PGPASSFILE: config.pg.passfile,
    PGDATABASE: config.pg.database,
    PGSSLMODE: config.pg.sslmode,
    DBOPS_PG_BIN_DIR: config.pg.binDir,
    DBOPS_DATABASES: config.databases.join(','),
    DBOPS_APP_ROLE: config.appRole,
    DBOPS_TEMPORAL_ADDRESS: config.temporal.address,
    DBOPS_TEMPORAL_NAMESPACE: config.temporal.namespace,
    DBOPS_TASK_QUEUE: config.temporal.taskQueue,
    DBOPS_TEMPORAL_UI_URL: config.temporal.uiUrl,
    DBOPS_TEMPORAL_API_KEY: config.temporal.apiKey,
    DBOPS_MILVUS_ADDRESS: config.milvus.address,
    DBOPS_MILVUS_TOKEN: config.milvus.token,
    DBOPS_MILVUS_DIM: config.milvus.dim,
    DBOPS_STORAGE: config.storage.kind,
    ...(config.storage.kind === 'local'
      ? { DBOPS_BACKUP_DIR: config.storage.dir }
      : {
          DBOPS_S3_BUCKET: config.storage.bucket,
          DBOPS_S3_ENDPOINT: config.storage.endpoint,
          DBOPS_S3_PREFIX: config.storage.prefix,
          AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID,
          AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY,
        }),
    DBOPS_BACKUP_FORMAT: config.backup.format,
    DBOPS_BACKUP_COMPRESSION: config.backup.compression,
    DBOPS_RETENTION_DAYS: config.backup.retentionDays,
    DBOPS_RETENTION_MIN_KEEP: config.backup.minKeep,
    DBOPS_BACKUP_TIME: `${config.backup.scheduleTime} ${config.backup.timezone}`,
    DBOPS_SLACK_WEBHOOK_URL: config.slackWebhookUrl,
    DBOPS_MIGRATIONS_DIR: config.migrations.dir,
    DBOPS_STACK_HOME: config.stackHome,
  };
  for (const [name, value] of Object.entries(effective)) {
    const shown =
      value === undefined || value === ''
        ? '(not set)'
        : SECRET_VARIABLES.has(name)
          ? '<redacted>'
          : String(value);
    rows.push({ name, value: shown, source: config.source[name] ?? (env[name] ? 'env' : 'default') });
  }
  return rows;
}

let cached: Config | undefined;
/** The process-wide configuration, loaded on first use. */
export function getConfig(): Config {
  cached ??= loadConfig();
  return cached;
}
