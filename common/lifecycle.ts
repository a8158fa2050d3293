/**
 * Data lifecycle rules: month math for the monthly user_behaviors partitions, the partition
 * retention decision, and the names of the databases restores leave behind.
 * Workflow-safe (no Node built-ins): used by the workflow, the activities and the CLI.
 */
import type { BackupEntry } from './backup';
import { type DbopsMark, parseDerivedDatabaseName, parseMark, parsePreRestoreComment } from './restore';

export const BEHAVIORS_TABLE = 'user_behaviors';
export const BEHAVIORS_DEFAULT_PARTITION = 'user_behaviors_default';

/** A calendar month as `YYYY-MM` (UTC: partition bounds are UTC midnights, see V002). */
export type Month = string;

const MONTH = /^(\d{4})-(\d{2})$/;
const PARTITION_NAME = /^user_behaviors_(\d{4})_(\d{2})$/;

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

function splitMonth(month: Month): { year: number; month: number } {
  const m = MONTH.exec(month);
  const mm = m ? Number(m[2]) : 0;
  if (!m || mm < 1 || mm > 12) throw new Error(`not a month: ${JSON.stringify(month)} (expected YYYY-MM)`);
  return { year: Number(m[1]), month: mm };
}

export function monthOf(time: Date): Month {
  return `${pad(time.getUTCFullYear(), 4)}-${pad(time.getUTCMonth() + 1)}`;
}

export function addMonths(month: Month, n: number): Month {
  const { year, month: m } = splitMonth(month);
  const index = year * 12 + (m - 1) + n;
  return `${pad(Math.floor(index / 12), 4)}-${pad((index % 12) + 1)}`;
}

/** The UTC instant the month starts. */
export function monthStart(month: Month): Date {
  const { year, month: m } = splitMonth(month);
  return new Date(Date.UTC(year, m - 1, 1));
}

/** Partition bounds as PostgreSQL timestamptz literals: FROM (from) TO (to). */
export function partitionRange(month: Month): { from: string; to: string } {
  return { from: `${month}-01 00:00:00+00`, to: `${addMonths(month, 1)}-01 00:00:00+00` };
}

export function partitionName(month: Month): string {
  return `${BEHAVIORS_TABLE}_${month.replace('-', '_')}`;
}

/** The month of a `user_behaviors_YYYY_MM` partition, or undefined for any other name. */
export function partitionMonth(name: string): Month | undefined {
  const m = PARTITION_NAME.exec(name);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 12) return undefined;
  return `${m[1]}-${m[2]}`;
}

/** Months from..to inclusive. */
export function monthsBetween(from: Month, to: Month): Month[] {
  const out: Month[] = [];
  for (let m = from; m <= to; m = addMonths(m, 1)) out.push(m);
  return out;
}

/**
 * First month that is kept: partitions of earlier months are past retention. With 13 months on
 * 2026-11-26 the cutoff is 2025-10, so 2025-10..2026-11 are kept (13 full months plus the current one).
 */
export function retentionCutoffMonth(now: Date, retentionMonths: number): Month {
  return addMonths(monthOf(now), -retentionMonths);
}

/** Times (ISO) of the backups that passed a real test restore (verification.json status passed). */
export function verifiedBackupTimes(entries: readonly BackupEntry[]): string[] {
  return entries
    .filter((e) => e.complete && e.verification?.status === 'passed')
    .map((e) => e.time)
    .sort();
}

export type RetentionMode = 'drop' | 'detach';

export interface PartitionRetentionDecision {
  readonly partition: string;
  readonly month: Month;
  readonly action: 'drop' | 'detach' | 'refuse';
  readonly reason: string;
}

/**
 * Which past-retention partitions may go: only those whose whole month is inside a verified
 * backup, i.e. a backup that passed a test restore and was taken at or after the partition's
 * upper bound. Partitions within retention are not listed.
 */
export function planPartitionRetention(input: {
  readonly partitions: readonly string[];
  readonly now: Date;
  readonly retentionMonths: number;
  readonly mode: RetentionMode;
  /** ISO times of verified backups of this database. */
  readonly verifiedBackups: readonly string[];
}): PartitionRetentionDecision[] {
  const cutoff = retentionCutoffMonth(input.now, input.retentionMonths);
  const newest = [...input.verifiedBackups].sort().at(-1);
  const decisions: PartitionRetentionDecision[] = [];
  for (const partition of [...input.partitions].sort()) {
    const month = partitionMonth(partition);
    if (!month || month >= cutoff) continue;
    const upper = monthStart(addMonths(month, 1));
    const age = `older than ${input.retentionMonths} months (kept from ${cutoff})`;
    if (newest && new Date(newest).getTime() >= upper.getTime()) {
      decisions.push({
        partition,
        month,
        action: input.mode,
        reason: `${age}; covered by the verified backup of ${newest}`,
      });
    } else {
      decisions.push({
        partition,
        month,
        action: 'refuse',
        reason: newest
          ? `${age}, but the newest verified backup (${newest}) is older than the partition's end ${upper.toISOString()}: run a backup and its verification first`
          : `${age}, but there is no verified backup of this database: run "dbops backup" and verify it first`,
      });
    }
  }
  return decisions;
}

// Databases restores leave behind (names from common/restore.ts): `<target>__restore_<stamp>`
// (shadow a restore fills before the swap), `<target>__pre_restore_<stamp>` (the replaced live
// database, kept for a rollback), `<database>__verify_<stamp>` (scratch of a backup verification).
export type LeftoverKind = 'shadow' | 'pre_restore' | 'scratch';

export interface LeftoverDatabase {
  readonly name: string;
  readonly kind: LeftoverKind;
  readonly target: string;
  readonly createdAt: Date;
}

export function parseLeftoverDatabase(name: string): LeftoverDatabase | undefined {
  const parsed = parseDerivedDatabaseName(name);
  if (!parsed) return undefined;
  const kind: LeftoverKind =
    parsed.kind === 'pre_restore' ? 'pre_restore' : parsed.kind === 'restore' ? 'shadow' : 'scratch';
  return { name, kind, target: parsed.base, createdAt: parsed.time };
}

export interface LeftoverDecision {
  readonly database: string;
  readonly kind: LeftoverKind;
  readonly action: 'drop' | 'keep';
  readonly reason: string;
}

/** keepUntil from a pre-restore database's `COMMENT ON DATABASE` JSON ({"dbops":"pre_restore",...,"keepUntil":...}). */
export function keepUntilFromComment(comment: string | null | undefined): Date | undefined {
  const parsed = parsePreRestoreComment(comment);
  if (!parsed) return undefined;
  const t = new Date(parsed.keepUntil);
  return Number.isNaN(t.getTime()) ? undefined : t;
}

const DAY_MS = 86_400_000;
const MARK_OF: Record<LeftoverKind, DbopsMark['dbops']> = {
  shadow: 'restore',
  pre_restore: 'pre_restore',
  scratch: 'verify',
};

/** The workflow ids named in the marks of shadow and scratch databases (whose status decides). */
export function leftoverWorkflowIds(
  databases: readonly { name: string; comment: string | null }[],
): string[] {
  const ids = new Set<string>();
  for (const db of databases) {
    const mark = parseMark(db.comment);
    if (mark && (mark.dbops === 'restore' || mark.dbops === 'verify')) ids.add(mark.workflowId);
  }
  return [...ids].sort();
}

/** Until when a marked leftover is kept; `why` when its workflow's status decided. */
function keepRule(
  parsed: LeftoverDatabase,
  mark: DbopsMark,
  input: { keepDays: number; scratchMaxAgeMs: number; workflowStatus?: ReadonlyMap<string, string> },
): { until: number; why?: string } {
  if (mark.dbops === 'pre_restore') {
    const t = Date.parse(mark.keepUntil);
    return { until: Number.isNaN(t) ? parsed.createdAt.getTime() + input.keepDays * DAY_MS : t };
  }
  const status = input.workflowStatus?.get(mark.workflowId);
  if (status === 'RUNNING') return { until: Infinity, why: `workflow ${mark.workflowId} is running` };
  if (status)
    return { until: -Infinity, why: `workflow ${mark.workflowId} is over (${status.toLowerCase()})` };
  // Its workflow's status is unknown: in use for at most scratchMaxAgeMs after it was created.
  const created = mark.dbops === 'restore' || mark.dbops === 'verify' ? Date.parse(mark.createdAt) : NaN;
  return { until: (Number.isNaN(created) ? parsed.createdAt.getTime() : created) + input.scratchMaxAgeMs };
}

/**
 * Only databases carrying dbops' mark for their kind are ever dropped: a look-alike name alone
 * (a user's `x__restore_20200101000000`) is left alone. A pre-restore database is kept until its
 * keepUntil; a shadow or scratch database while its workflow runs (`workflowStatus`, Temporal
 * status names by workflow id) and, when that is unknown, for `scratchMaxAgeMs` after it was
 * created (its mark's createdAt: the name carries the workflow's start, maybe a day earlier).
 * Nothing with open connections is dropped.
 */
export function planLeftoverDatabases(input: {
  readonly databases: readonly { name: string; comment: string | null; connections: number }[];
  readonly now: Date;
  readonly keepDays: number;
  readonly scratchMaxAgeMs: number;
  readonly workflowStatus?: ReadonlyMap<string, string>;
}): LeftoverDecision[] {
  const out: LeftoverDecision[] = [];
  for (const db of input.databases) {
    const parsed = parseLeftoverDatabase(db.name);
    if (!parsed) continue;
    const base = { database: db.name, kind: parsed.kind };
    const mark = parseMark(db.comment);
    if (
      mark?.dbops !== MARK_OF[parsed.kind] ||
      (mark.dbops === 'pre_restore' && mark.target !== parsed.target)
    ) {
      out.push({
        ...base,
        action: 'keep',
        reason: `not made by dbops: its comment carries no dbops ${MARK_OF[parsed.kind]} mark (a name alone proves nothing); left alone`,
      });
      continue;
    }
    const rule = keepRule(parsed, mark, input);
    const keep = rule.until > input.now.getTime();
    const when = Number.isFinite(rule.until) ? new Date(rule.until).toISOString() : '';
    const why = rule.why ?? (keep ? `kept until ${when}` : `past its keep time ${when}`);
    if (keep) out.push({ ...base, action: 'keep', reason: why });
    else if (db.connections > 0)
      out.push({ ...base, action: 'keep', reason: `${why}, but ${db.connections} session(s) connected` });
    else out.push({ ...base, action: 'drop', reason: why });
  }
  return out;
}
