/**
 * Every variable dbops reads, with its schema: the one list from which the config (./index.ts),
 * `dbops config` (./describe.ts) and the dev stack's `env` (src/stack/envvars.ts) derive.
 */
import { z } from 'zod';
import { DATABASE_NAME, DATABASE_NAME_RULE } from '../../common/names';
import { BACKUP_COMPRESSIONS, BACKUP_FORMATS } from '../../common/backup';
import { FAILPOINTS, parseFailpoint } from '../../common/failpoints';

const identifier = z.string().regex(DATABASE_NAME, `must be a PostgreSQL name: ${DATABASE_NAME_RULE}`);
/** A whole number in [min, max]; every refusal says the range (zod's own words name neither it nor the fix). */
const wholeNumber = (min: number, max?: number, what = 'a whole number') => {
  const rule = `must be ${what} ${max === undefined ? `of at least ${min}` : `from ${min} to ${max}`}`;
  const n = z.coerce.number({ error: rule }).int({ error: rule }).min(min, { error: rule });
  return max === undefined ? n : n.max(max, { error: rule });
};
const port = wholeNumber(1, 65535, 'a port number');
const positiveInt = wholeNumber(1);
const nonNegativeInt = wholeNumber(0);
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const sslmode = z.enum(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']);
const hostPort = z.string().regex(/^[^\s:/]+:\d{1,5}$/, 'must be host:port, e.g. 127.0.0.1:7233');
const url = z.url({
  protocol: /^https?$/,
  error: 'must be an http:// or https:// URL like http://host:port',
});
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

/** Worker log levels, least severe first (DBOPS_LOG_LEVEL; src/worker/logging.ts). */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];
/** Worker log formats (DBOPS_LOG_FORMAT): auto is pretty on a terminal, json everywhere else. */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormatName = (typeof LOG_FORMATS)[number];
/** Days of the week as DBOPS_BASEBACKUP_FULL_DAY takes them, Sunday first (as Temporal's calendars). */
export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];
const WEEKDAY_NAMES = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] as const;

export function parseDurationMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) throw new Error(`not a duration: ${text}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
    m[2] as 'ms' | 's' | 'm' | 'h' | 'd'
  ];
  return Math.round(Number(m[1]) * unit);
}

/** Every variable dbops reads, with its schema. Order is the order `dbops config` prints. */
export const variables = {
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
  PGSSLMODE: sslmode.optional(),
  /** libpq's TLS files (paths; PGSSLROOTCERT=system: the system CAs), for `pg` and the child tools alike. */
  PGSSLROOTCERT: z.string().min(1).optional(),
  PGSSLCERT: z.string().min(1).optional(),
  PGSSLKEY: z.string().min(1).optional(),
  PGSSLCRL: z.string().min(1).optional(),
  DBOPS_PG_BIN_DIR: z.string().optional(),
  DBOPS_DATABASES: csv(identifier).optional(),
  DBOPS_APP_ROLE: identifier.default('recsys_app'),
  /** A separate server for backup verifications (scratch databases); unset: the PG* server. */
  DBOPS_VERIFY_PGHOST: z.string().min(1).optional(),
  DBOPS_VERIFY_PGPORT: port.optional(),
  DBOPS_VERIFY_PGUSER: z.string().min(1).optional(),
  DBOPS_VERIFY_PGPASSWORD: z.string().optional(),
  DBOPS_VERIFY_PGPASSFILE: z.string().optional(),
  DBOPS_VERIFY_PGDATABASE: identifier.optional(),
  DBOPS_VERIFY_PGSSLMODE: sslmode.optional(),

  DBOPS_TEMPORAL_ADDRESS: hostPort.default('127.0.0.1:17233'),
  DBOPS_TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  DBOPS_TASK_QUEUE: z.string().min(1).default('dbops'),
  DBOPS_TEMPORAL_UI_URL: url.default('http://127.0.0.1:18233'),
  DBOPS_TEMPORAL_TLS: bool.default(false),
  /** PEM files: the CA that signed the server (default: the system CAs), and the mTLS client pair. */
  DBOPS_TEMPORAL_TLS_CA: z.string().min(1).optional(),
  DBOPS_TEMPORAL_TLS_CERT: z.string().min(1).optional(),
  DBOPS_TEMPORAL_TLS_KEY: z.string().min(1).optional(),
  /** The name the server certificate holds, when DBOPS_TEMPORAL_ADDRESS's host is not it (a proxy, an IP). */
  DBOPS_TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),
  DBOPS_TEMPORAL_API_KEY: z.string().optional(),

  DBOPS_MILVUS_ADDRESS: hostPort.default('127.0.0.1:19531'),
  DBOPS_MILVUS_TOKEN: z.string().optional(),
  /** TLS to Milvus: on, and PEM files (CA; the mTLS pair, sent only with the CA) and the certificate's name. */
  DBOPS_MILVUS_TLS: bool.default(false),
  DBOPS_MILVUS_TLS_CA: z.string().min(1).optional(),
  DBOPS_MILVUS_TLS_CERT: z.string().min(1).optional(),
  DBOPS_MILVUS_TLS_KEY: z.string().min(1).optional(),
  DBOPS_MILVUS_TLS_SERVER_NAME: z.string().min(1).optional(),
  DBOPS_MILVUS_DIM: wholeNumber(1, 32768).default(256),
  DBOPS_MILVUS_METRIC: z.enum(['COSINE', 'IP', 'L2']).default('COSINE'),
  DBOPS_MILVUS_INDEX: z.enum(['HNSW', 'IVF_FLAT']).default('HNSW'),

  DBOPS_STORAGE: z.enum(['local', 's3']).optional(),
  DBOPS_BACKUP_DIR: z.string().min(1).optional(),
  /**
   * `local`: an S3 store keeps a copy of every backup in DBOPS_BACKUP_DIR too, as the spec's backup.sh
   * kept BACKUP_DIR beside s3://$S3_BUCKET/backups/ (activities/storage/mirror.ts); `none`: S3 only.
   */
  DBOPS_BACKUP_MIRROR: z
    .enum(['none', 'local'], {
      message: 'must be local (also keep each backup in DBOPS_BACKUP_DIR) or none (S3 only)',
    })
    .default('none'),
  DBOPS_S3_BUCKET: z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
      'must be an S3 bucket name (lowercase, digits, dots, dashes)',
    )
    .optional(),
  DBOPS_S3_ENDPOINT: url.optional(),
  /** An http:// DBOPS_S3_ENDPOINT sends backups and signed requests in clear: accepted only when this says so (the dev stack). */
  DBOPS_S3_ALLOW_HTTP: bool.default(false),
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
  /** pg_dump --no-owner / --no-privileges (the spec's backup.sh used both); recorded in the manifest. */
  DBOPS_DUMP_NO_OWNER: bool.default(false),
  DBOPS_DUMP_NO_PRIVILEGES: bool.default(false),
  /** age recipients (`age1…` public keys, comma or space separated): new backups are encrypted for them. */
  DBOPS_BACKUP_AGE_RECIPIENTS: z
    .string()
    .transform((s) => s.split(/[\s,]+/).filter(Boolean))
    .pipe(
      z
        .array(
          z
            .string()
            .regex(
              /^age1[02-9ac-hj-np-z]{58}$/,
              'must be age1… public keys (age-keygen -y <identity> prints one)',
            ),
        )
        .min(1, 'names no recipient'),
    )
    .optional(),
  /** age identity file (a Kubernetes Secret): verification and restore decrypt encrypted backups with it. */
  DBOPS_BACKUP_AGE_IDENTITY: z.string().min(1).optional(),
  /** The age binary: Debian's in the image, the one `npm run stack -- up` installs in the dev stack. */
  DBOPS_AGE_BIN: z.string().min(1).default('age'),
  DBOPS_BACKUP_TIME: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (24 h)')
    .default('03:00'),
  DBOPS_SCHEDULE_TIMEZONE: z.string().min(1).default('UTC'),

  DBOPS_RESTORE_APPROVAL_TIMEOUT: duration.default(parseDurationMs('24h')),
  DBOPS_RESTORE_FOUR_EYES: bool.default(false),
  DBOPS_RESTORE_KEEP_DAYS: nonNegativeInt.default(7),
  DBOPS_RESTORE_JOBS: wholeNumber(1, 64).default(2),
  /**
   * OpenSSH allowed-signers file (ssh-keygen(1) ALLOWED SIGNERS): when set, the worker requires every
   * restore request, approval, rejection and rollback to be signed by a key listed there.
   */
  DBOPS_APPROVERS_FILE: z.string().min(1).optional(),
  /** The CLI's SSH key for signing decisions (default: the ssh-agent's first key, else ~/.ssh/id_ed25519). */
  DBOPS_SIGNING_KEY: z.string().min(1).optional(),
  /** Ed25519 private key (PEM file): workers sign the manifests they write and refuse unsigned or mis-signed ones. */
  DBOPS_MANIFEST_KEY: z.string().min(1).optional(),
  /**
   * File of Temporal payload keys, a line `<key id>:<base64 of 32 bytes>` each, the first encrypts
   * (src/codec/keys.ts): when set, workflow inputs, results and history are AES-256-GCM encrypted.
   */
  DBOPS_PAYLOAD_KEYS: z.string().min(1).optional(),
  /** Where restores decompress archives and directory dumps stage files; default os.tmpdir(). */
  DBOPS_SCRATCH_DIR: z.string().min(1).optional(),
  /**
   * The WAL archiver's physical replication slot (activities/postgres/wal/slots.ts); pg_receivewal
   * streams from `<slot>_recv`, so the name leaves room for that within PostgreSQL's 63 characters.
   */
  DBOPS_WAL_SLOT: z
    .string()
    .regex(/^[a-z0-9_]{1,58}$/, 'must be a replication slot name: 1 to 58 lowercase letters, digits or _')
    .default('dbops_wal_archiver'),
  /** pg_receivewal's spool (`<dir>/<system id>/<slot>/`); default `<DBOPS_SCRATCH_DIR>/dbops-wal-spool`. */
  DBOPS_WAL_SPOOL_DIR: z.string().min(1).optional(),
  /** on: `dbops schedules apply` keeps the weekly full and daily incremental base backup schedules. */
  DBOPS_BASEBACKUP_SCHEDULE: z
    .enum(['on', 'off'], {
      message: 'must be on (weekly full and daily incremental base backups) or off',
    })
    .default('off'),
  DBOPS_BASEBACKUP_TIME: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (24 h)')
    .default('01:30'),
  /** The day of the weekly full base backup; the other six days take an incremental one. */
  DBOPS_BASEBACKUP_FULL_DAY: z
    .string()
    .transform((s) => s.trim().toLowerCase())
    .pipe(
      z.enum([...WEEKDAYS, ...WEEKDAY_NAMES], {
        message: `must be a day of the week: ${WEEKDAYS.join(', ')} (or its full name)`,
      }),
    )
    .transform((day) => day.slice(0, 3) as Weekday)
    .default('sun'),
  /** Base backup retention: the chains (a full one and its incrementals) of the newest N full backups. */
  DBOPS_BASEBACKUP_KEEP_FULL: wholeNumber(1, 1000).default(2),

  DBOPS_MIGRATIONS_DIR: z.string().min(1).optional(),
  DBOPS_MIGRATION_LOCK_TIMEOUT: duration.default(parseDurationMs('10s')),
  DBOPS_MIGRATION_STATEMENT_TIMEOUT: duration.default(parseDurationMs('0s')),

  DBOPS_PARTITION_PREMAKE_MONTHS: wholeNumber(0, 60).default(3),
  DBOPS_PARTITION_RETENTION_MONTHS: wholeNumber(1, 600).default(13),
  DBOPS_PARTITION_RETENTION_MODE: z.enum(['drop', 'detach']).default('drop'),
  DBOPS_PARTITION_MAINTENANCE_TIME: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (24 h)')
    .default('04:30'),

  DBOPS_SLACK_WEBHOOK_URL: url.optional(),
  DBOPS_HTTP_PORT: port.optional(),
  /** The worker's log: lines below this level are dropped (any case: INFO works too). */
  DBOPS_LOG_LEVEL: z
    .string()
    .transform((s) => s.trim().toLowerCase())
    .pipe(z.enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(', ')}` }))
    .default('info'),
  /** json: one JSON object a line (log collectors); pretty: for people; auto: pretty on a terminal. */
  DBOPS_LOG_FORMAT: z
    .enum(LOG_FORMATS, { message: `must be one of ${LOG_FORMATS.join(', ')}` })
    .default('auto'),
  DBOPS_STACK_HOME: z.string().optional(),
  /** Fault drills only (test/drills/): never set in production. */
  DBOPS_FAILPOINTS: csv(
    z
      .string()
      .refine(
        (v) => parseFailpoint(v) !== undefined,
        `must be <failpoint>=crash or <failpoint>=pause:<ms>, failpoints: ${FAILPOINTS.join(', ')}`,
      ),
  ).optional(),
} as const;

export type Variables = typeof variables;
export type VariableName = keyof Variables;
export type Parsed = { [K in VariableName]: z.output<Variables[K]> };

/**
 * The spec's backup.sh/restore.sh names (docs: README "Coming from the scripts"), so a team moving
 * from the scripts keeps its environment: each is read when its dbops variable is unset, warned
 * about once a process, and refused when both are set to different values (src/config/aliases.ts).
 * The scripts' own defaults (localhost:5432, recommend) are not carried over: dbops's are.
 */
export const VARIABLE_ALIASES = {
  POSTGRES_HOST: { variable: 'PGHOST', script: 'backup.sh/restore.sh' },
  POSTGRES_PORT: { variable: 'PGPORT', script: 'backup.sh/restore.sh' },
  POSTGRES_USER: { variable: 'PGUSER', script: 'backup.sh/restore.sh' },
  POSTGRES_PASSWORD: { variable: 'PGPASSWORD', script: 'backup.sh/restore.sh' },
  /** Also the default DBOPS_DATABASES, as it was the one database the scripts backed up. */
  POSTGRES_DB: { variable: 'PGDATABASE', script: 'backup.sh/restore.sh' },
  /** A local store; with S3_BUCKET set it is S3's local copy only with DBOPS_BACKUP_MIRROR=local (as the scripts kept). */
  BACKUP_DIR: { variable: 'DBOPS_BACKUP_DIR', script: 'backup.sh/restore.sh' },
  /** backup.sh uploaded to s3://$S3_BUCKET/backups/: the default DBOPS_S3_PREFIX is `backups`. */
  S3_BUCKET: { variable: 'DBOPS_S3_BUCKET', script: 'backup.sh' },
  SLACK_WEBHOOK: { variable: 'DBOPS_SLACK_WEBHOOK_URL', script: 'backup.sh' },
  RETENTION_DAYS: { variable: 'DBOPS_RETENTION_DAYS', script: 'backup.sh' },
} as const satisfies Record<string, { variable: VariableName; script: string }>;
export type AliasName = keyof typeof VARIABLE_ALIASES;

/**
 * The spec's variables dbops does not read, with what to do instead: a warning beats silently
 * ignoring `DRY_RUN=true` in front of a restore.
 */
export const UNREAD_SPEC_VARIABLES = {
  DRY_RUN: "is restore.sh's switch and dbops ignores it: use `dbops restore start --dry-run`",
  MILVUS_HOST: "is the spec's Python client setting and dbops ignores it: set DBOPS_MILVUS_ADDRESS=host:port",
  MILVUS_PORT: "is the spec's Python client setting and dbops ignores it: set DBOPS_MILVUS_ADDRESS=host:port",
} as const;

const SECRET_NAMES = [
  'PGPASSWORD',
  'DBOPS_VERIFY_PGPASSWORD',
  'DATABASE_URL',
  'DBOPS_TEMPORAL_API_KEY',
  'DBOPS_MILVUS_TOKEN',
  'DBOPS_SLACK_WEBHOOK_URL',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
];

/** Values never printed, logged or passed to a workflow: the secrets and their aliases. */
export const SECRET_VARIABLES: ReadonlySet<string> = new Set([
  ...SECRET_NAMES,
  ...Object.entries(VARIABLE_ALIASES)
    .filter(([, a]) => SECRET_NAMES.includes(a.variable))
    .map(([alias]) => alias),
]);

/**
 * The variables the dev stack sets (stack.env.json, `npm run stack -- env`). `default`: also the
 * config's default when the variable is unset; `export`: only exported for tools and tests (the S3
 * bucket is left out of the defaults on purpose: the dev default store is a local folder).
 */
export const STACK_VARIABLES = {
  PGHOST: 'default',
  PGPORT: 'default',
  PGUSER: 'default',
  PGDATABASE: 'default',
  DBOPS_PG_BIN_DIR: 'default',
  DBOPS_TEMPORAL_ADDRESS: 'default',
  DBOPS_TEMPORAL_UI_URL: 'default',
  DBOPS_MILVUS_ADDRESS: 'default',
  DBOPS_S3_ENDPOINT: 'export',
  DBOPS_S3_ALLOW_HTTP: 'default',
  DBOPS_S3_BUCKET: 'export',
  DBOPS_STACK_HOME: 'export',
  DBOPS_AGE_BIN: 'default',
} as const satisfies Partial<Record<VariableName, 'default' | 'export'>>;
