/**
 * Restore and verification: derived database names, the plan and its hash, approvals, status.
 * Workflow-safe (no Node built-ins): used by the workflows, the activities, the CLI and `db cleanup`.
 */
import type { BackupCompression, BackupFormat } from './backup';
import type { PointInTimePlan } from './pitr';
import type { ApprovalRecord, EffectivePolicy, PolicyRequest, SignedStatement, Signer } from './approvals';
import { canonicalJson, sha256Hex } from './canonical-hash';
import { assertDatabaseName, assertNotSystemDatabase, DATABASE_NAME, InputError } from './names';
/** PostgreSQL truncates identifiers longer than NAMEDATALEN-1 bytes: derived names must fit. */
export const MAX_IDENTIFIER_BYTES = 63;

export type DerivedKind = 'restore' | 'pre_restore' | 'verify';
const SUFFIX: Record<DerivedKind, string> = {
  restore: '__restore_',
  pre_restore: '__pre_restore_',
  verify: '__verify_',
};
const STAMP_LENGTH = 14;
const DERIVED = /^(.+?)__(restore|pre_restore|verify)_(\d{14})$/;

function utf8Length(s: string): number {
  let n = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}

/** Longest base name that still leaves room for `kind`'s suffix and stamp in 63 bytes. */
export function maxBaseLength(kind: DerivedKind): number {
  return MAX_IDENTIFIER_BYTES - SUFFIX[kind].length - STAMP_LENGTH;
}

/** `yyyymmddhhmmss` in UTC. */
export function timeStamp(time: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(time.getUTCFullYear(), 4)}${p(time.getUTCMonth() + 1)}${p(time.getUTCDate())}${p(time.getUTCHours())}${p(time.getUTCMinutes())}${p(time.getUTCSeconds())}`;
}

function derivedName(kind: DerivedKind, base: string, time: Date): string {
  assertDatabaseName(base);
  if (utf8Length(base) > maxBaseLength(kind)) {
    throw new InputError(
      `database name ${JSON.stringify(base)} is too long for a restore: ${utf8Length(base)} bytes, at most ${maxBaseLength(kind)} so that ${JSON.stringify(`${base}${SUFFIX[kind]}<yyyymmddhhmmss>`)} fits PostgreSQL's ${MAX_IDENTIFIER_BYTES}-byte limit; rename the database or restore into a shorter --target`,
    );
  }
  return `${base}${SUFFIX[kind]}${timeStamp(time)}`;
}

/** `<target>__restore_<yyyymmddhhmmss>`: the database a restore writes into before cut-over. */
export const shadowDatabaseName = (target: string, time: Date) => derivedName('restore', target, time);
/** `<target>__pre_restore_<yyyymmddhhmmss>`: the replaced database, kept for rollback. */
export const preRestoreDatabaseName = (target: string, time: Date) =>
  derivedName('pre_restore', target, time);
/** `<database>__verify_<yyyymmddhhmmss>`: the scratch database of a backup verification. */
export const verifyScratchDatabaseName = (database: string, time: Date) =>
  derivedName('verify', database, time);

/** Checks that `target` may be replaced (not a system database) and every name it derives fits; throws InputError otherwise. */
export function assertRestoreTarget(target: string): void {
  assertNotSystemDatabase(target);
  const t = new Date(0);
  shadowDatabaseName(target, t);
  preRestoreDatabaseName(target, t);
}

export interface DerivedDatabaseName {
  readonly kind: DerivedKind;
  /** The target (restore, pre_restore) or the backed-up database (verify). */
  readonly base: string;
  readonly time: Date;
}

/** Parses a name made by the builders above; undefined for any other name. */
export function parseDerivedDatabaseName(name: string): DerivedDatabaseName | undefined {
  const m = DERIVED.exec(name);
  if (!m || !DATABASE_NAME.test(name)) return undefined;
  const [, base, kind, s] = m as unknown as [string, string, DerivedKind, string];
  if (!DATABASE_NAME.test(base)) return undefined;
  const time = new Date(
    Date.UTC(
      +s.slice(0, 4),
      +s.slice(4, 6) - 1,
      +s.slice(6, 8),
      +s.slice(8, 10),
      +s.slice(10, 12),
      +s.slice(12, 14),
    ),
  );
  if (Number.isNaN(time.getTime()) || timeStamp(time) !== s) return undefined;
  return { kind, base, time };
}

// ---------------------------------------------------------------------------------------------
// Marks: the JSON `COMMENT ON DATABASE` dbops leaves on each database it makes or holds. A name
// proves nothing (anyone may create `x__restore_20200101000000`): cleanup drops, a retry reuses and
// a swap trusts only a database carrying the mark of the workflow concerned.

/** A shadow (`restore`) or verification scratch (`verify`) database, marked right after CREATE DATABASE. */
export interface WorkMark {
  readonly dbops: 'restore' | 'verify';
  readonly workflowId: string;
  /** When the database was created (its name carries the workflow's start, maybe a day earlier). */
  readonly createdAt: string;
}

/** A kept pre-restore database (the replaced target), with how long it is kept for a rollback. */
export interface PreRestoreComment {
  readonly dbops: 'pre_restore';
  readonly target: string;
  readonly workflowId: string;
  readonly keepUntil: string;
}

/** The target after a swap: which database this workflow swapped in (proof for a retry). */
export interface SwappedInMark {
  readonly dbops: 'swapped_in';
  readonly from: string;
  readonly workflowId: string;
}

/**
 * The target while a cut-over blocks connections to it, committed together with ALLOW_CONNECTIONS
 * false: who blocked it (the workflow and its server session, alive or not) and the comment to put
 * back. A database refusing connections without this mark was blocked by someone else: left alone.
 */
export interface BlockedMark {
  readonly dbops: 'blocked';
  readonly workflowId: string;
  readonly pid: number;
  readonly backendStart: string;
  readonly previousComment: string | null;
}

export type DbopsMark = WorkMark | PreRestoreComment | SwappedInMark | BlockedMark;

const MARK_FIELDS: Record<DbopsMark['dbops'], readonly string[]> = {
  restore: ['workflowId', 'createdAt'],
  verify: ['workflowId', 'createdAt'],
  pre_restore: ['target', 'workflowId', 'keepUntil'],
  swapped_in: ['from', 'workflowId'],
  blocked: ['workflowId', 'backendStart'],
};

/** The dbops mark in a database's comment, or undefined for any other comment (or none). */
export function parseMark(text: string | null | undefined): DbopsMark | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as Record<string, unknown> | null;
    const fields = v && typeof v === 'object' ? MARK_FIELDS[v.dbops as DbopsMark['dbops']] : undefined;
    return fields?.every((f) => typeof v![f] === 'string') ? (v as unknown as DbopsMark) : undefined;
  } catch {
    return undefined;
  }
}

export function parsePreRestoreComment(text: string | null | undefined): PreRestoreComment | undefined {
  const mark = parseMark(text);
  return mark?.dbops === 'pre_restore' ? mark : undefined;
}

// ---------------------------------------------------------------------------------------------
// The plan and its hash: what the approver sees is exactly what runs.

/** Which backup: an id, the newest good one, or the newest one that passed a test restore. */
export type BackupSelector = string;
export const LATEST = 'latest';
export const LATEST_VERIFIED = 'latest-verified';

export interface RestorePlan {
  readonly target: string;
  readonly targetExists: boolean;
  readonly targetSizeBytes: number | null;
  readonly backupId: string;
  readonly backupDatabase: string;
  readonly backupTakenAt: string;
  readonly format: BackupFormat;
  readonly compression: BackupCompression;
  readonly sizeBytes: number;
  readonly rawBytes: number;
  readonly sha256: string;
  readonly schemaVersion: string | null;
  /** -1 (both): unknown, an adopted spec backup not yet counted (BackupManifest.adopted). */
  readonly tables: number;
  readonly rows: number;
  readonly extensions: readonly string[];
  readonly verified: 'passed' | 'failed' | 'never';
  readonly shadowDatabase: string;
  readonly preRestoreDatabase: string;
  readonly keepDays: number;
  readonly jobs: number;
  readonly steps: readonly string[];
  readonly estimatedSeconds: number;
  /** A point-in-time restore (`dbops restore --to-time`): where it recovered to, and how that compares with now. */
  readonly pointInTime?: PointInTimePlan;
}

/** The plan's identity: an approval names it, so a different plan cannot run under that approval. */
export function planHash(plan: RestorePlan): string {
  return sha256Hex(canonicalJson(plan));
}

/**
 * Rough duration from measured rates on 2 cores (bench/restore.ts): pg_restore -j2 ≈ 50 MiB/s of
 * raw archive, verification and ANALYZE a few seconds per GiB. Shown to the approver only.
 */
export function estimateRestoreSeconds(rawBytes: number, jobs: number): number {
  const gib = rawBytes / 2 ** 30;
  const restore = (rawBytes / (25 * 2 ** 20)) * (2 / Math.max(1, Math.min(jobs, 4))) ** 0.5;
  return Math.ceil(5 + restore + gib * 6);
}

export function restoreSteps(plan: Omit<RestorePlan, 'steps' | 'estimatedSeconds'>): string[] {
  const steps = [
    `create database ${plan.shadowDatabase}`,
    plan.format === 'plain'
      ? `stream ${plan.backupId} (${plan.compression}) into psql`
      : `download ${plan.backupId} to a temporary file and run pg_restore -j ${plan.jobs}`,
    plan.tables < 0
      ? `count ${plan.shadowDatabase}'s rows into the adopted backup's manifest (it has none yet), extensions [${plan.extensions.join(', ')}], no invalid indexes`
      : `verify ${plan.shadowDatabase}: ${plan.tables} tables, ${plan.rows} rows, schema version ${plan.schemaVersion ?? 'none'}, extensions [${plan.extensions.join(', ')}]`,
  ];
  if (plan.targetExists) {
    steps.push(
      `block new connections to ${plan.target} and terminate its sessions`,
      `rename ${plan.target} → ${plan.preRestoreDatabase} (kept ${plan.keepDays} days for rollback)`,
      `rename ${plan.shadowDatabase} → ${plan.target}`,
    );
  } else {
    steps.push(`rename ${plan.shadowDatabase} → ${plan.target} (${plan.target} does not exist yet)`);
  }
  steps.push(`ANALYZE ${plan.target}`, 'notify Slack');
  return steps;
}

// ---------------------------------------------------------------------------------------------
// Workflow input, status and result

/**
 * What a requester asks for. Policy (signatures, four-eyes, keep days, approval timeout) is the
 * worker's: fourEyes, keepDays and approvalTimeoutMs here are only taken when stricter.
 */
export interface RestoreWorkflowInput extends PolicyRequest {
  /** Backup id, `latest` or `latest-verified`. */
  readonly backup: BackupSelector;
  /** Whose backups `latest`/`latest-verified` look at (ignored for an id). */
  readonly database?: string;
  /** Database to replace; default: the backup's database. */
  readonly target?: string;
  readonly dryRun?: boolean;
  /** The requester's name as typed; where signatures are required, the signer's principal replaces it. */
  readonly requestedBy: string;
  /** The signed restore-request statement (required where the worker requires signatures). */
  readonly request?: SignedStatement;
  /** Restore over a database outside DBOPS_DATABASES (never a system database). */
  readonly allowUnlistedTarget?: boolean;
  readonly jobs: number;
  /** Tighter activity retries (tests). */
  readonly maximumAttempts?: number;
  /** Notice a dead worker sooner than the streaming profile's minute (tests). */
  readonly heartbeatTimeoutMs?: number;
}

export type RestorePhase =
  | 'resolving'
  | 'checking'
  | 'planning'
  | 'awaiting-approval'
  | 'restoring'
  | 'verifying'
  | 'cutting-over'
  | 'analyzing'
  | 'notifying'
  | 'cleaning-up'
  | 'done'
  | 'rejected'
  | 'timed-out'
  | 'failed';

export interface RestoreStatus {
  readonly phase: RestorePhase;
  readonly step: number;
  readonly steps: number;
  readonly backupId: string | null;
  readonly target: string | null;
  readonly requestedBy: string;
  /** The requester's proven key, when the request was signed. */
  readonly requester: Signer | null;
  /** The worker's policy as applied to this restore (null until read). */
  readonly policy: EffectivePolicy | null;
  readonly plan: RestorePlan | null;
  readonly planHash: string | null;
  readonly waitingSince: string | null;
  readonly approvalDeadline: string | null;
  readonly approval: ApprovalRecord | null;
  readonly error: string | null;
}

export interface RestoreResult {
  readonly outcome: 'restored' | 'dry-run' | 'rejected' | 'timed-out';
  readonly plan: RestorePlan;
  readonly planHash: string;
  readonly approval: ApprovalRecord | null;
  readonly target: string;
  readonly preRestoreDatabase: string | null;
  readonly cutoverMs: number | null;
  readonly durationMs: number;
  readonly link: string | null;
  /** Set when the cut-over committed although the run then failed or was cancelled (the restore stands). */
  readonly note?: string;
}

export interface RollbackInput {
  readonly target: string;
  readonly preRestoreDatabase: string;
  readonly restoreWorkflowId: string;
  /** Days to keep the database the rollback replaces; only taken when longer than the worker's. */
  readonly keepDays?: number;
  /** Who asks, as typed; where signatures are required, the signer's principal replaces it. */
  readonly requestedBy?: string;
  /** The signed rollback statement (required where the worker requires signatures). */
  readonly signed?: SignedStatement;
}

export interface RollbackResult {
  /** Who decided the rollback (principal when signed) and their key. */
  readonly by?: string;
  readonly signer?: Signer | null;
  readonly target: string;
  readonly restoredFrom: string;
  /** Where the database that was replaced by the rollback now lives (kept like a pre-restore). */
  readonly replacedKeptAs: string;
  readonly cutoverMs: number;
}

export interface VerifyWorkflowInput {
  readonly backupId: string;
  readonly jobs?: number;
  readonly maximumAttempts?: number;
  /** Test restores tried when one ends without a verdict (server gone, scratch space full); default 4. */
  readonly rounds?: number;
  /** Wait between those rounds (a durable timer); default 30 min. */
  readonly roundDelayMs?: number;
}

export interface VerifyWorkflowResult {
  readonly backupId: string;
  /** `could-not-verify`: no round gave a verdict; nothing was recorded (in the Unavailable failure's details). */
  readonly status: 'passed' | 'failed' | 'could-not-verify';
  readonly detail: string;
  readonly scratchDatabase: string;
  readonly durationMs: number;
}
