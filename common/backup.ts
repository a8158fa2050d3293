/**
 * Backups: ids, the manifest, the store's key layout and the retention rule.
 * Workflow-safe (no Node built-ins): used by the workflow, the activities and the CLI.
 */

import type { AdoptedFrom } from './adopted';
import type { DumpOptions } from './dump-options';
import { assertDatabaseName, DATABASE_NAME_PATTERN, InputError } from './names';

export const BACKUP_FORMATS = ['custom', 'directory', 'plain'] as const;
export const BACKUP_COMPRESSIONS = ['zstd', 'gzip', 'none'] as const;
export type BackupFormat = (typeof BACKUP_FORMATS)[number];
export type BackupCompression = (typeof BACKUP_COMPRESSIONS)[number];

const BACKUP_ID = new RegExp(
  `^(${DATABASE_NAME_PATTERN})_(\\d{4})(\\d{2})(\\d{2})_(\\d{2})(\\d{2})(\\d{2})$`,
);

/** The file written last: a backup folder without it is incomplete and never listed, restored or counted. */
export const MANIFEST_FILE = 'manifest.json';
/** Written by the restore-verification workflow beside the manifest (see BackupVerification). */
export const VERIFICATION_FILE = 'verification.json';

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** `<db>_<UTC yyyymmdd_hhmmss>`: sorts by time within a database. */
export function makeBackupId(database: string, time: Date): string {
  assertDatabaseName(database);
  const d = time;
  return `${database}_${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}_${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`;
}

export interface ParsedBackupId {
  readonly id: string;
  readonly database: string;
  readonly time: Date;
}

/** Parses and validates a backup id; rejects anything else (paths, `../`, slashes, bad dates). */
export function parseBackupId(id: string): ParsedBackupId {
  const m = BACKUP_ID.exec(id);
  const bad = () =>
    new InputError(
      `backup id ${JSON.stringify(id)} is not valid: expected <database>_<yyyymmdd>_<hhmmss> (UTC), e.g. recsys_20261126_030000; list them with "dbops backups list"`,
    );
  if (!m) throw bad();
  const [, database, y, mo, d, h, mi, s] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const time = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)));
  if (Number.isNaN(time.getTime()) || makeBackupId(database, time) !== id) throw bad();
  return { id, database, time };
}

export function isValidBackupId(id: string): boolean {
  try {
    parseBackupId(id);
    return true;
  } catch {
    return false;
  }
}

/** Name of the dump object inside the backup folder: tells format, compression and encryption at a glance. */
export function dumpFileName(
  format: BackupFormat,
  compression: BackupCompression,
  encrypted = false,
): string {
  const base = { custom: 'dump.pgcustom', directory: 'dump.pgdir.tar', plain: 'dump.sql' }[format];
  const ext = { zstd: '.zst', gzip: '.gz', none: '' }[compression];
  return `${base}${ext}${encrypted ? AGE_SUFFIX : ''}`;
}

/** The stored archive is age-encrypted (BackupManifest.encryption). */
export const AGE_SUFFIX = '.age';

/** How an archive is encrypted: age, for the recipients whose fingerprints are listed. */
export interface BackupEncryption {
  readonly alg: 'age';
  /** First 16 hex digits of SHA-256 of each `age1…` recipient: which identity can decrypt it. */
  readonly recipients: readonly string[];
}

// Key layout inside a store (S3 adds its prefix, the local store its folder):
//   <database>/<backup id>/<dump file>      the archive
//   <database>/<backup id>/manifest.json    written last
//   <database>/<backup id>/verification.json  written by the restore test
//   <database>/latest.json                  pointer to the newest complete, verified backup
export const backupFolderKey = (database: string, backupId: string) => `${database}/${backupId}/`;
export const backupFileKey = (database: string, backupId: string, file: string) =>
  `${database}/${backupId}/${file}`;
export const manifestKey = (database: string, backupId: string) =>
  backupFileKey(database, backupId, MANIFEST_FILE);
export const verificationKey = (database: string, backupId: string) =>
  backupFileKey(database, backupId, VERIFICATION_FILE);
export const latestKey = (database: string) => `${database}/latest.json`;
//   <database>/holds/<backup id>/<holder>.json  a hold: the backup is in use, retention keeps it
// (beside the backup folders, not in them: a hold is not part of the backup and never makes a
// folder that looks like an incomplete backup; "holds" is not a backup id, so listings skip it).
export const holdsKey = (database: string, backupId?: string) =>
  `${database}/holds/${backupId === undefined ? '' : `${backupId}/`}`;
/** The holder (a workflow id) is encoded: it may hold `/` or other characters a key must not. */
export const holdKey = (database: string, backupId: string, holder: string) =>
  `${holdsKey(database, backupId)}${encodeURIComponent(holder)}.json`;

export interface TableRowCount {
  readonly schema: string;
  readonly table: string;
  /**
   * `table` ordinary table, `partition` a leaf partition (its rows are in the dump), `partitioned`
   * a partitioned parent: its count is the sum of its leaves (what `SELECT count(*)` on it returns).
   */
  readonly kind: 'table' | 'partition' | 'partitioned';
  readonly rows: number;
}

export interface BackupManifest {
  readonly manifestVersion: 1;
  readonly id: string;
  readonly database: string;
  readonly format: BackupFormat;
  readonly compression: BackupCompression;
  /** The archive's file name inside the backup folder. */
  readonly file: string;
  readonly sizeBytes: number;
  readonly sha256: string;
  /** Bytes pg_dump produced, before compression. */
  readonly rawBytes: number;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  readonly serverVersion: string;
  readonly pgDumpVersion: string;
  /** Latest successful migration in flyway_schema_history, or null if the table is absent. */
  readonly schemaVersion: string | null;
  /** The archive carries the planner statistics (pg_dump --statistics, PostgreSQL 18+): a restore needs no ANALYZE. */
  readonly statistics?: boolean;
  /** What pg_dump left out (owners, grants); absent in manifests from before the option: FULL_DUMP. */
  readonly dumpOptions?: DumpOptions;
  /** Exact row counts taken in the dump's snapshot. */
  readonly tables: readonly TableRowCount[];
  readonly integrity: {
    readonly checkedAt: string;
    /** What was proven: e.g. "size+sha256, zstd stream, pg_restore --list (42 entries)". */
    readonly checks: string;
  };
  /** The archive is encrypted on the client (DBOPS_BACKUP_AGE_RECIPIENTS); absent: stored plain. */
  readonly encryption?: BackupEncryption;
  /** Set for a spec backup taken over by `dbops backups adopt`. */
  readonly adopted?: AdoptedFrom;
  readonly workflowId?: string;
  readonly runId?: string;
  /**
   * Written by a worker with DBOPS_MANIFEST_KEY: Ed25519 over the canonical JSON
   * (common/canonical-hash.ts canonicalJson) of the manifest without this field.
   */
  readonly signature?: ManifestSignature;
}

export interface ManifestSignature {
  readonly alg: 'ed25519';
  /** The first 16 hex digits of the SHA-256 of the raw 32-byte public key: names the key, proves nothing. */
  readonly keyId: string;
  /** The 64-byte signature, base64. */
  readonly value: string;
}

/**
 * Why a manifest cannot describe backup `backupId`, or undefined when it can: it names another
 * backup or database (a manifest copied from elsewhere would point a restore at another
 * database's archive, or at another target), or a file name dbops never writes for its format and
 * compression. The field types are the schema's (activities/storage/manifest-schema.ts), which
 * calls this after them; the archive itself is then proven against the manifest (size, SHA-256,
 * decoders) before anything restores it.
 */
export function manifestMismatch(
  manifest: Pick<BackupManifest, 'id' | 'database' | 'format' | 'compression' | 'file' | 'encryption'>,
  backupId: string,
): string | undefined {
  const database = parseBackupId(backupId).database;
  if (manifest.id !== backupId) return `names backup ${JSON.stringify(manifest.id)}, not ${backupId}`;
  if (manifest.database !== database)
    return `names database ${JSON.stringify(manifest.database)}, not ${database}`;
  const file = dumpFileName(manifest.format, manifest.compression, manifest.encryption !== undefined);
  if (manifest.file !== file)
    return `names archive ${JSON.stringify(manifest.file)}, but a ${manifest.format} ${manifest.compression}${manifest.encryption ? ' encrypted' : ''} backup is ${file}`;
  return undefined;
}

/**
 * Result of the test restore of a backup (written by the verification workflow as verification.json).
 * A backup whose verification failed is not "good" for retention or `latest`.
 */
export interface BackupVerification {
  readonly status: 'passed' | 'failed';
  readonly checkedAt: string;
  readonly detail?: string;
  readonly workflowId?: string;
}

/** A backup folder as the store lists it. */
export interface BackupEntry {
  readonly id: string;
  readonly database: string;
  readonly time: string;
  /** True when manifest.json exists. */
  readonly complete: boolean;
  readonly manifest?: BackupManifest;
  readonly verification?: BackupVerification;
  /** Total bytes of the folder's objects. */
  readonly storedBytes: number;
  /** Why manifest.json could not be read (too large, not JSON): the folder then counts as incomplete. */
  readonly manifestProblem?: string;
}

/**
 * A backup that counts: complete (manifest written after the integrity check) and not failed by
 * a test restore. Once verification is in use for a database (`all`, its entries, holds a backup
 * that passed), only verified backups count: retention's newest good backup is then the newest
 * verified one, never an unproven newer backup. An adopted backup counts only once verified. The optional arguments match Array#filter, so
 * `entries.filter(isGoodBackup)` applies the rule to one database's entries.
 */
export function isGoodBackup(entry: BackupEntry, _index?: number, all?: readonly BackupEntry[]): boolean {
  if (!entry.complete || entry.verification?.status === 'failed') return false;
  // An adopted spec dump was only checked as a file: it proves itself by a test restore first.
  if (entry.manifest?.adopted && entry.verification?.status !== 'passed') return false;
  const verificationInUse = all?.some((e) => e.complete && e.verification?.status === 'passed') ?? false;
  return !verificationInUse || entry.verification?.status === 'passed';
}

export function backupStatus(
  entry: BackupEntry,
): 'verified' | 'complete' | 'verification-failed' | 'incomplete' {
  if (!entry.complete) return 'incomplete';
  if (entry.verification?.status === 'failed') return 'verification-failed';
  return entry.verification?.status === 'passed' ? 'verified' : 'complete';
}

/**
 * A backup in use: a restore waiting for approval (or applying it) or a verification reads it, so
 * retention must not delete it. The holder releases it when it ends, whatever the outcome; a holder
 * that never does (a terminated workflow) stops holding at `expiresAt`.
 */
export interface BackupHold {
  readonly backupId: string;
  /** The workflow id of the restore or verification. */
  readonly holder: string;
  /** What the holder does with the backup, for `backups prune` and logs. */
  readonly reason: string;
  readonly heldAt: string;
  readonly expiresAt: string;
}

/** Holds that still count at `now` (an expired hold's holder is gone). */
export function activeHolds(holds: readonly BackupHold[], now: Date): BackupHold[] {
  return holds.filter((h) => Date.parse(h.expiresAt) > now.getTime());
}

export interface RetentionPolicy {
  readonly retentionDays: number;
  /** Newest good backups that are never deleted, whatever their age. */
  readonly minKeep: number;
}

export interface PruneDecision {
  readonly entry: BackupEntry;
  readonly action: 'keep' | 'delete';
  readonly reason: string;
  /** Kept only because a restore or verification holds it. */
  readonly held?: boolean;
}

const DAY_MS = 86_400_000;

/**
 * Retention: delete what is older than retentionDays, except the newest `minKeep` good backups
 * (at least 1: the newest good backup is never deleted) and a backup with an active hold (a
 * restore or verification uses it). Incomplete folders younger than the retention may be a running
 * backup and are kept. Entries of one database, any order.
 */
export function planPrune(
  entries: readonly BackupEntry[],
  policy: RetentionPolicy,
  now: Date,
  holds: readonly BackupHold[] = [],
): PruneDecision[] {
  const held = activeHolds(holds, now);
  const newestFirst = [...entries].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const protectedIds = new Set(
    newestFirst
      .filter(isGoodBackup)
      .slice(0, Math.max(1, policy.minKeep))
      .map((e) => e.id),
  );
  const cutoff = now.getTime() - policy.retentionDays * DAY_MS;
  return newestFirst.map((entry): PruneDecision => {
    const ageDays = Math.floor((now.getTime() - new Date(entry.time).getTime()) / DAY_MS);
    if (protectedIds.has(entry.id)) {
      return {
        entry,
        action: 'keep',
        reason: `one of the newest ${Math.max(1, policy.minKeep)} good backups`,
      };
    }
    if (new Date(entry.time).getTime() >= cutoff) {
      return { entry, action: 'keep', reason: `${ageDays} days old, within ${policy.retentionDays} days` };
    }
    const reason = `${ageDays} days old (${backupStatus(entry)}), older than ${policy.retentionDays} days`;
    const holders = held.filter((h) => h.backupId === entry.id);
    if (holders.length) return { entry, action: 'keep', reason: heldReason(reason, holders), held: true };
    return { entry, action: 'delete', reason };
  });
}

/** Why a backup retention would delete (`deleteReason`) is kept: who holds it, until when at the latest. */
export function heldReason(deleteReason: string, holders: readonly BackupHold[]): string {
  const who = holders.map((h) => `${h.holder} (${h.reason}, until ${h.expiresAt} at the latest)`);
  return `${deleteReason}, but held by ${who.join(', ')}`;
}

/** What `latest.json` holds. */
export interface LatestPointer {
  readonly id: string;
  readonly database: string;
  readonly file: string;
  readonly sha256: string;
  readonly sizeBytes: number;
  readonly updatedAt: string;
}

/** Queryable progress of a backup workflow. */
export interface BackupProgress {
  readonly phase:
    'starting' | 'dumping' | 'verifying' | 'finalizing' | 'pruning' | 'done' | 'failed' | 'cancelled';
  readonly backupId: string;
  readonly database: string;
  /** Stored bytes once the dump is uploaded; live bytes are in the dump activity's heartbeat. */
  readonly bytes: number;
}

export interface BackupWorkflowInput {
  readonly database: string;
  readonly format?: BackupFormat;
  readonly compression?: BackupCompression;
  readonly trigger: 'scheduled' | 'manual';
  /** Apply retention after a successful backup (default true). */
  readonly prune?: boolean;
  /** Start the test-restore verification (verifyBackupWorkflow) after success; default: scheduled backups only. */
  readonly verify?: boolean;
}

export interface BackupWorkflowResult {
  readonly outcome: 'succeeded';
  readonly backupId: string;
  readonly database: string;
  readonly sizeBytes: number;
  readonly durationMs: number;
  readonly location: string;
  readonly format: BackupFormat;
  readonly compression: BackupCompression;
  readonly sha256: string;
  readonly pruned: readonly string[];
}
