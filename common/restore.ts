/**
 * Restore and verification: derived database names, the plan and its hash, approvals, status.
 * Workflow-safe (no Node built-ins): used by the workflows, the activities, the CLI and `db cleanup`.
 */
import type { BackupCompression, BackupFormat } from './backup';

/** Same rule as the config's PostgreSQL names. */
const DATABASE_NAME = /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/;
/** PostgreSQL truncates identifiers longer than NAMEDATALEN-1 bytes: derived names must fit. */
export const MAX_IDENTIFIER_BYTES = 63;

export class RestoreInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RestoreInputError';
  }
}

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

/** Validates a database name (the config's rule); the error names the problem and the fix. */
export function assertDatabaseName(name: string, what = 'database name'): void {
  if (typeof name !== 'string' || !DATABASE_NAME.test(name)) {
    throw new RestoreInputError(
      `${what} ${JSON.stringify(name)} is not valid: use letters, digits, _ $ - (at most 63 bytes, not starting with a digit)`,
    );
  }
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
    throw new RestoreInputError(
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

/** Checks that every name a restore into `target` derives fits; throws RestoreInputError otherwise. */
export function assertRestoreTarget(target: string): void {
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

/** What the COMMENT ON DATABASE of a kept pre-restore database holds (JSON). */
export interface PreRestoreComment {
  readonly dbops: 'pre_restore';
  readonly target: string;
  readonly workflowId: string;
  readonly keepUntil: string;
}

export function parsePreRestoreComment(text: string | null | undefined): PreRestoreComment | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as Partial<PreRestoreComment>;
    return v && v.dbops === 'pre_restore' && typeof v.target === 'string' && typeof v.keepUntil === 'string'
      ? (v as PreRestoreComment)
      : undefined;
  } catch {
    return undefined;
  }
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
}

/** JSON with object keys sorted at every level: one text per value, whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);

function utf8Bytes(s: string): number[] {
  const out: number[] = [];
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return out;
}

/** SHA-256 of a string's UTF-8 bytes, hex. Pure TypeScript so workflows can hash deterministically. */
export function sha256Hex(text: string): string {
  const bytes = utf8Bytes(text);
  const bitLength = bytes.length * 8;
  bytes.push(0x80);
  while (bytes.length % 64 !== 56) bytes.push(0);
  const hi = Math.floor(bitLength / 0x100000000);
  for (const word of [hi, bitLength >>> 0])
    bytes.push((word >>> 24) & 255, (word >>> 16) & 255, (word >>> 8) & 255, word & 255);
  const h = new Uint32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]);
  const w = new Uint32Array(64);
  const rotr = (x: number, n: number) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < bytes.length; off += 64) {
    for (let i = 0; i < 16; i++) {
      const j = off + i * 4;
      w[i] = (bytes[j]! << 24) | (bytes[j + 1]! << 16) | (bytes[j + 2]! << 8) | bytes[j + 3]!;
    }
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15]!;
      const b = w[i - 2]!;
      const s0 = rotr(a, 7) ^ rotr(a, 18) ^ (a >>> 3);
      const s1 = rotr(b, 17) ^ rotr(b, 19) ^ (b >>> 10);
      w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = [h[0]!, h[1]!, h[2]!, h[3]!, h[4]!, h[5]!, h[6]!, h[7]!];
    for (let i = 0; i < 64; i++) {
      const S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K[i]! + w[i]!) >>> 0;
      const S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) >>> 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) >>> 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) >>> 0;
    }
    h[0] = (h[0]! + a) >>> 0;
    h[1] = (h[1]! + b) >>> 0;
    h[2] = (h[2]! + c) >>> 0;
    h[3] = (h[3]! + d) >>> 0;
    h[4] = (h[4]! + e) >>> 0;
    h[5] = (h[5]! + f) >>> 0;
    h[6] = (h[6]! + g) >>> 0;
    h[7] = (h[7]! + hh) >>> 0;
  }
  return [...h].map((x) => x.toString(16).padStart(8, '0')).join('');
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
    `verify ${plan.shadowDatabase}: ${plan.tables} tables, ${plan.rows} rows, schema version ${plan.schemaVersion ?? 'none'}, extensions [${plan.extensions.join(', ')}]`,
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
// Approval

export interface ApprovalRequest {
  readonly decision: 'approve' | 'reject';
  /** Who decides (a person's name or login). */
  readonly by: string;
  readonly comment?: string;
  /** The hash of the plan being approved (from `dbops restore status`). */
  readonly planHash: string;
}

export interface ApprovalRecord extends ApprovalRequest {
  /** When the workflow accepted the decision (workflow time, ISO). */
  readonly at: string;
  readonly via: 'update' | 'signal';
}

export interface ApprovalRules {
  readonly requestedBy: string;
  readonly fourEyes: boolean;
  readonly planHash: string | undefined;
  readonly decided: ApprovalRecord | undefined;
  readonly awaiting: boolean;
}

/** Why an approval is refused, or undefined when it is acceptable. Used by the Update validator and the signal. */
export function approvalProblem(request: ApprovalRequest, rules: ApprovalRules): string | undefined {
  if (!request || (request.decision !== 'approve' && request.decision !== 'reject')) {
    return 'decision must be "approve" or "reject"';
  }
  if (typeof request.by !== 'string' || request.by.trim() === '')
    return "the approver's name is required (--as NAME)";
  if (rules.decided) {
    return `already decided: ${rules.decided.decision} by ${rules.decided.by} at ${rules.decided.at}`;
  }
  if (!rules.awaiting || rules.planHash === undefined) return 'the restore is not waiting for approval';
  if (request.planHash !== rules.planHash) {
    return `plan hash ${JSON.stringify(request.planHash)} does not match the plan waiting for approval (${rules.planHash}): review the current plan with "dbops restore status"`;
  }
  if (
    rules.fourEyes &&
    request.decision === 'approve' &&
    request.by.trim().toLowerCase() === rules.requestedBy.trim().toLowerCase()
  ) {
    return `four-eyes rule: ${request.by} requested this restore and cannot approve it; ask someone else`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Workflow input, status and result

export interface RestoreWorkflowInput {
  /** Backup id, `latest` or `latest-verified`. */
  readonly backup: BackupSelector;
  /** Whose backups `latest`/`latest-verified` look at (ignored for an id). */
  readonly database?: string;
  /** Database to replace; default: the backup's database. */
  readonly target?: string;
  readonly dryRun?: boolean;
  readonly requestedBy: string;
  readonly approvalTimeoutMs: number;
  readonly fourEyes: boolean;
  readonly keepDays: number;
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
}

export interface RollbackInput {
  readonly target: string;
  readonly preRestoreDatabase: string;
  readonly restoreWorkflowId: string;
  readonly keepDays: number;
}

export interface RollbackResult {
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
}

export interface VerifyWorkflowResult {
  readonly backupId: string;
  readonly status: 'passed' | 'failed';
  readonly detail: string;
  readonly scratchDatabase: string;
  readonly durationMs: number;
}
