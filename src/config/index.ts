import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { z } from 'zod';
import type { MilvusTls } from '../../activities/milvus/client';
import type { PgConnectionSettings } from '../../activities/postgres/connection';
import type { AgeSettings, StorageSettings } from '../../activities/storage/types';
import type { BackupCompression, BackupFormat } from '../../common/backup';
import { parseFailpoint, type FailpointAction, type FailpointName } from '../../common/failpoints';
import type { PayloadKeyring } from '../codec/keys';
import { readAliases, warnOncePerProcess } from './aliases';
import { ConfigError } from './errors';
import { payloadKeys, storageSettings, verificationServer } from './sections';
import { connectionSecurity, type temporalTlsFiles } from './tls';
import {
  SECRET_VARIABLES,
  STACK_VARIABLES,
  variables,
  type AliasName,
  type LogFormatName,
  type LogLevelName,
  type Parsed,
  type VariableName,
  type Weekday,
} from './variables';

export {
  parseDurationMs,
  SECRET_VARIABLES,
  STACK_VARIABLES,
  UNREAD_SPEC_VARIABLES,
  VARIABLE_ALIASES,
} from './variables';
export type { AliasName, LogFormatName, LogLevelName, Weekday } from './variables';
export { onceEach } from './aliases';
export { ConfigError } from './errors';
export { describeConfig } from './describe';

/**
 * dbops configuration: parsed and validated once, frozen, failing fast with the variable's name.
 * PostgreSQL uses the standard libpq variables (or DATABASE_URL) so that `pg` and pg_dump see the
 * same settings and the password never reaches a command line; everything else is DBOPS_*.
 * Defaults point at the dev stack (`npm run stack -- up`), whose stack.env.json fills in the
 * machine-specific paths (PostgreSQL bin dir).
 */

/** The checkout (or image) root: two levels above src/config/, three above dist/src/config/. */
export const REPO_ROOT = path.resolve(
  __dirname,
  '..',
  '..',
  __dirname.includes(`${path.sep}dist${path.sep}`) ? '..' : '',
);

export type PgSettings = PgConnectionSettings;

/** Where a setting came from: the environment, the dev stack, the default, or a script name (alias). */
export type ConfigSource = 'env' | 'stack' | 'default' | AliasName;

export interface Config {
  readonly source: Readonly<Record<string, ConfigSource>>;
  readonly pg: PgSettings;
  /**
   * DBOPS_VERIFY_PG*: the server that holds verification scratch databases, so test restores need
   * not land on production; undefined: they go to `pg`.
   */
  readonly verifyPg: PgSettings | undefined;
  /** DBOPS_SCRATCH_DIR: where restores decompress archives and directory dumps stage their files. */
  readonly scratchDir: string;
  /** DBOPS_WAL_SLOT / DBOPS_WAL_SPOOL_DIR: the WAL archiver's replication slot and pg_receivewal's spool. */
  readonly wal: { readonly slot: string; readonly spoolDir: string };
  /**
   * DBOPS_BASEBACKUP_*: the weekly full and daily incremental base backup schedules (on/off, HH:MM in
   * DBOPS_SCHEDULE_TIMEZONE, the full one's day) and retention (the newest `keepFull` full chains).
   */
  readonly basebackup: {
    readonly schedule: boolean;
    readonly time: string;
    readonly fullDay: Weekday;
    readonly keepFull: number;
  };
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
    readonly tlsFiles: ReturnType<typeof temporalTlsFiles>;
    readonly apiKey: string | undefined;
  };
  readonly milvus: {
    readonly address: string;
    readonly token: string | undefined;
    readonly tls: MilvusTls;
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
    /** DBOPS_DUMP_NO_OWNER / DBOPS_DUMP_NO_PRIVILEGES: leave ownership / grants out of the dump. */
    readonly noOwner: boolean;
    readonly noPrivileges: boolean;
    readonly scheduleTime: string;
    readonly timezone: string;
  };
  readonly restore: {
    readonly approvalTimeoutMs: number;
    readonly fourEyes: boolean;
    /** The least number of days a replaced database is kept; a request may ask for more, never less. */
    readonly keepDays: number;
    readonly jobs: number;
    /** DBOPS_APPROVERS_FILE: signatures are required (worker policy) when set. */
    readonly approversFile: string | undefined;
    /** DBOPS_SIGNING_KEY: the CLI's default key for `ssh-keygen -Y sign` (`none`: never sign). */
    readonly signingKey: string | undefined;
  };
  /** DBOPS_MANIFEST_KEY: the Ed25519 key (PEM file) that signs and proves backup manifests. */
  readonly manifestKeyFile: string | undefined;
  /** DBOPS_BACKUP_AGE_RECIPIENTS / _IDENTITY, DBOPS_AGE_BIN: client-side backup encryption (workers). */
  readonly age: AgeSettings;
  /** DBOPS_PAYLOAD_KEYS: the keys that encrypt Temporal payloads (src/codec/); undefined: payloads in clear. */
  readonly payloadKeys: PayloadKeyring | undefined;
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
  /** The worker's log (src/worker/logging.ts): DBOPS_LOG_LEVEL and DBOPS_LOG_FORMAT. */
  readonly log: { readonly level: LogLevelName; readonly format: LogFormatName };
  readonly stackHome: string;
  /** DBOPS_FAILPOINTS: where a fault drill makes the worker crash or stall (empty in production). */
  readonly failpoints: readonly (readonly [FailpointName, FailpointAction])[];
}

function readStackDefaults(stackHome: string): Record<string, string> {
  const file = path.join(stackHome, 'stack.env.json');
  if (!existsSync(file)) return {};
  try {
    const all = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    return Object.fromEntries(
      Object.entries(all).filter(
        (e): e is [string, string] =>
          (STACK_VARIABLES as Record<string, string>)[e[0]] === 'default' && typeof e[1] === 'string',
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

/**
 * Each variable's text and source: the environment (and DATABASE_URL's parts) first, then the
 * spec's script names (VARIABLE_ALIASES), then the dev stack's defaults.
 */
function rawValues(
  env: NodeJS.ProcessEnv,
  stack: Record<string, string>,
  warn: (line: string) => void,
): {
  raw: Record<string, string | undefined>;
  source: Record<string, ConfigSource>;
  aliasFor: Partial<Record<VariableName, AliasName>>;
} {
  const fromUrl = env.DATABASE_URL ? fromDatabaseUrl(env.DATABASE_URL) : {};
  const given: Partial<Record<VariableName, string>> = {};
  for (const name of Object.keys(variables) as VariableName[]) {
    const value = (env[name] === '' ? undefined : env[name]) ?? fromUrl[name];
    if (value !== undefined) given[name] = value;
  }
  const aliases = readAliases(env, given, (name) =>
    env[name] !== undefined && env[name] !== '' ? name : 'DATABASE_URL',
  );
  if (aliases.conflicts.length) throw new ConfigError(aliases.conflicts);
  for (const line of aliases.warnings) warn(line);
  const raw: Record<string, string | undefined> = {};
  const source: Record<string, ConfigSource> = {};
  for (const name of Object.keys(variables) as VariableName[]) {
    const value = given[name] ?? aliases.values[name] ?? stack[name];
    raw[name] = value;
    source[name] =
      given[name] !== undefined ? 'env' : (aliases.from[name] ?? (value !== undefined ? 'stack' : 'default'));
  }
  // The default DBOPS_DATABASES is PGDATABASE: read from POSTGRES_DB, it says so too.
  if (raw.DBOPS_DATABASES === undefined && aliases.from.PGDATABASE) {
    source.DBOPS_DATABASES = aliases.from.PGDATABASE;
  }
  return { raw, source, aliasFor: aliases.from };
}

/**
 * `warn` gets each line about the spec's script names in use (VARIABLE_ALIASES); by default they go
 * to stderr once a process, however often the config is loaded.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  warn: (line: string) => void = warnOncePerProcess,
): Config {
  const stackHome = env.DBOPS_STACK_HOME || path.join(REPO_ROOT, '.stack');
  const { raw, source, aliasFor } = rawValues(env, readStackDefaults(stackHome), warn);

  const problems: string[] = [];
  const parsed = {} as Record<string, unknown>;
  for (const [name, schema] of Object.entries(variables) as [VariableName, z.ZodType][]) {
    const r = schema.safeParse(raw[name]);
    if (r.success) parsed[name] = r.data;
    else {
      const shown = SECRET_VARIABLES.has(name) ? '<redacted>' : JSON.stringify(raw[name]);
      const alias = aliasFor[name];
      const named = alias ? `${alias} (read for ${name})` : name;
      problems.push(`${named}=${shown}: ${r.error.issues.map((i) => i.message).join('; ')}`);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  const v = parsed as Parsed;

  const storage = storageSettings(v, stackHome);

  const security = connectionSecurity(v);
  if (security.problems.length) throw new ConfigError(security.problems);
  const pg: PgSettings = {
    host: v.PGHOST,
    port: v.PGPORT,
    user: v.PGUSER,
    database: v.PGDATABASE,
    sslmode: v.PGSSLMODE,
    ssl: security.pgSsl,
    passfile: v.PGPASSFILE,
    password: v.PGPASSWORD,
    binDir: v.DBOPS_PG_BIN_DIR,
  };
  const config: Config = {
    source,
    pg,
    verifyPg: verificationServer(v, pg),
    scratchDir: path.resolve(v.DBOPS_SCRATCH_DIR ?? os.tmpdir()),
    wal: {
      slot: v.DBOPS_WAL_SLOT,
      spoolDir: path.resolve(
        v.DBOPS_WAL_SPOOL_DIR ?? path.join(v.DBOPS_SCRATCH_DIR ?? os.tmpdir(), 'dbops-wal-spool'),
      ),
    },
    basebackup: {
      schedule: v.DBOPS_BASEBACKUP_SCHEDULE === 'on',
      time: v.DBOPS_BASEBACKUP_TIME,
      fullDay: v.DBOPS_BASEBACKUP_FULL_DAY,
      keepFull: v.DBOPS_BASEBACKUP_KEEP_FULL,
    },
    databases: v.DBOPS_DATABASES?.length ? v.DBOPS_DATABASES : [v.PGDATABASE],
    appRole: v.DBOPS_APP_ROLE,
    temporal: security.temporal,
    milvus: {
      address: v.DBOPS_MILVUS_ADDRESS,
      token: v.DBOPS_MILVUS_TOKEN,
      tls: security.milvusTls,
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
      noOwner: v.DBOPS_DUMP_NO_OWNER,
      noPrivileges: v.DBOPS_DUMP_NO_PRIVILEGES,
      scheduleTime: v.DBOPS_BACKUP_TIME,
      timezone: v.DBOPS_SCHEDULE_TIMEZONE,
    },
    restore: {
      approvalTimeoutMs: v.DBOPS_RESTORE_APPROVAL_TIMEOUT,
      fourEyes: v.DBOPS_RESTORE_FOUR_EYES,
      keepDays: v.DBOPS_RESTORE_KEEP_DAYS,
      jobs: v.DBOPS_RESTORE_JOBS,
      approversFile: v.DBOPS_APPROVERS_FILE && path.resolve(v.DBOPS_APPROVERS_FILE),
      // `none`: never sign (tests, and operators of a worker that does not require signatures).
      signingKey:
        v.DBOPS_SIGNING_KEY === 'none' ? 'none' : v.DBOPS_SIGNING_KEY && path.resolve(v.DBOPS_SIGNING_KEY),
    },
    manifestKeyFile: v.DBOPS_MANIFEST_KEY && path.resolve(v.DBOPS_MANIFEST_KEY),
    age: {
      bin: v.DBOPS_AGE_BIN,
      recipients: v.DBOPS_BACKUP_AGE_RECIPIENTS ?? [],
      ...(v.DBOPS_BACKUP_AGE_IDENTITY && { identityFile: path.resolve(v.DBOPS_BACKUP_AGE_IDENTITY) }),
    },
    payloadKeys: v.DBOPS_PAYLOAD_KEYS === undefined ? undefined : payloadKeys(v.DBOPS_PAYLOAD_KEYS),
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
    log: { level: v.DBOPS_LOG_LEVEL, format: v.DBOPS_LOG_FORMAT },
    stackHome,
    failpoints: (v.DBOPS_FAILPOINTS ?? []).map((text) => parseFailpoint(text)!),
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

let cached: Config | undefined;

/** The process-wide configuration, loaded on first use. */
export function getConfig(): Config {
  cached ??= loadConfig();
  return cached;
}
