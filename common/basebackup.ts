/**
 * Physical base backups (issue 20, `dbops basebackup`): ids, the dbops manifest, and what dbops
 * reads from PostgreSQL's own backup_label and backup_manifest. The store layout is in pitr.ts.
 * Workflow-safe (no Node built-ins): used by the workflow, the activities and the CLI.
 */

import { InputError } from './names';

/** `full`: a whole cluster; `incremental`: only what changed since its parent (PostgreSQL 17+). */
export const BASE_BACKUP_KINDS = ['full', 'incremental'] as const;
export type BaseBackupKind = (typeof BASE_BACKUP_KINDS)[number];

/** The objects of one base backup (see pitr.ts for where they live). */
export const BASE_BACKUP_FILES = {
  /** pg_basebackup -Ft to stdout (base.tar with the WAL it needs and its backup_manifest), zstd. */
  archive: 'base.tar.zst',
  /** PostgreSQL's backup_manifest, also inside the archive: an incremental backup needs its parent's. */
  pgManifest: 'backup_manifest',
  /** dbops' manifest, written last: a base backup without it does not exist. */
  manifest: 'manifest.json',
} as const;
export type BaseBackupFile = (typeof BASE_BACKUP_FILES)[keyof typeof BASE_BACKUP_FILES];

const BASE_BACKUP_ID = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-(full|incremental)$/;
const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** `<UTC yyyymmdd>T<hhmmss>Z-<kind>`: sorts by time, says its kind at a glance. */
export function makeBaseBackupId(time: Date, kind: BaseBackupKind): string {
  const d = time;
  return `${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}T${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z-${kind}`;
}

/** Parses and validates a base backup id; anything else (paths, `..`, bad dates) is an InputError. */
export function parseBaseBackupId(id: string): { id: string; time: Date; kind: BaseBackupKind } {
  const m = BASE_BACKUP_ID.exec(id);
  const bad = () =>
    new InputError(
      `base backup id ${JSON.stringify(id)} is not valid: expected <yyyymmdd>T<hhmmss>Z-full|incremental (UTC), e.g. 20261205T030000Z-full; list them with "dbops basebackups list"`,
    );
  if (!m) throw bad();
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const kind = m[7] as BaseBackupKind;
  const time = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  if (Number.isNaN(time.getTime()) || makeBaseBackupId(time, kind) !== id) throw bad();
  return { id, time, kind };
}

export function isValidBaseBackupId(id: string): boolean {
  try {
    parseBaseBackupId(id);
    return true;
  } catch {
    return false;
  }
}

/** A WAL position as PostgreSQL prints it, `C/DD000028`. */
export function isLsn(text: string): boolean {
  return /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/.test(text);
}

/** LSN as a number, for ordering (uint64: BigInt). */
export function lsnValue(lsn: string): bigint {
  if (!isLsn(lsn)) throw new Error(`not a WAL location: ${JSON.stringify(lsn)}`);
  const [hi, lo] = lsn.split('/') as [string, string];
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

/** What PostgreSQL's backup_label says (the lines dbops and pg_combinebackup rely on). */
export interface BackupLabel {
  readonly startLsn: string;
  readonly timeline: number;
  /** `START TIME`, as PostgreSQL wrote it (server time zone). */
  readonly startTime: string;
  /** An incremental backup: the start of the backup it builds on (pg_combinebackup checks it). */
  readonly incrementalFrom?: { readonly lsn: string; readonly timeline: number };
}

/** Parses backup_label; throws naming the line that is missing or malformed. */
export function parseBackupLabel(text: string): BackupLabel {
  const line = (name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(text)?.[1]?.trim();
  const need = (name: string) => {
    const v = line(name);
    if (v === undefined) throw new Error(`backup_label has no "${name}" line`);
    return v;
  };
  const lsnOf = (name: string, v: string) => {
    const lsn = v.split(' ')[0] ?? '';
    if (!isLsn(lsn)) throw new Error(`backup_label "${name}" is not a WAL location: ${v}`);
    return lsn;
  };
  const tliOf = (name: string, v: string) => {
    if (!/^[0-9]+$/.test(v)) throw new Error(`backup_label "${name}" is not a timeline: ${v}`);
    return Number(v);
  };
  const startLsn = lsnOf('START WAL LOCATION', need('START WAL LOCATION'));
  const timeline = tliOf('START TIMELINE', need('START TIMELINE'));
  const fromLsn = line('INCREMENTAL FROM LSN');
  const fromTli = line('INCREMENTAL FROM TLI');
  if ((fromLsn === undefined) !== (fromTli === undefined))
    throw new Error('backup_label has only one of "INCREMENTAL FROM LSN" and "INCREMENTAL FROM TLI"');
  return {
    startLsn,
    timeline,
    startTime: need('START TIME'),
    ...(fromLsn !== undefined &&
      fromTli !== undefined && {
        incrementalFrom: {
          lsn: lsnOf('INCREMENTAL FROM LSN', fromLsn),
          timeline: tliOf('INCREMENTAL FROM TLI', fromTli),
        },
      }),
  };
}

/** What dbops reads from PostgreSQL's backup_manifest. */
export interface PgManifestSummary {
  /** A decimal uint64: read from the text, JSON numbers lose its last digits. */
  readonly systemIdentifier: string;
  readonly files: number;
  /** The WAL the backup needs to be consistent: timeline and range of its last range. */
  readonly timeline: number;
  readonly startLsn: string;
  readonly stopLsn: string;
}

/** Parses backup_manifest (version 2, PostgreSQL 17+); throws naming what is missing. */
export function summarizePgManifest(text: string): PgManifestSummary {
  const sysid = /"System-Identifier":\s*([0-9]{1,20})\s*[,}]/.exec(text)?.[1];
  if (sysid === undefined)
    throw new Error('backup_manifest has no System-Identifier (a PostgreSQL 17+ manifest has)');
  const parsed = JSON.parse(text) as {
    Files?: unknown[];
    'WAL-Ranges'?: { Timeline?: number; 'Start-LSN'?: string; 'End-LSN'?: string }[];
  };
  const ranges = parsed['WAL-Ranges'] ?? [];
  if (ranges.length === 0 || !Array.isArray(parsed.Files))
    throw new Error('backup_manifest has no WAL-Ranges or Files');
  for (const r of ranges)
    if (typeof r.Timeline !== 'number' || !isLsn(r['Start-LSN'] ?? '') || !isLsn(r['End-LSN'] ?? ''))
      throw new Error(`backup_manifest has a malformed WAL range: ${JSON.stringify(r)}`);
  const last = [...ranges]
    .sort((a, b) => (lsnValue(a['End-LSN']!) < lsnValue(b['End-LSN']!) ? -1 : 1))
    .at(-1)!;
  const first = [...ranges].sort((a, b) =>
    lsnValue(a['Start-LSN']!) < lsnValue(b['Start-LSN']!) ? -1 : 1,
  )[0]!;
  return {
    systemIdentifier: sysid,
    files: parsed.Files.length,
    timeline: last.Timeline!,
    startLsn: first['Start-LSN']!,
    stopLsn: last['End-LSN']!,
  };
}

/** How a base backup was proven before its manifest was written. */
export interface BaseBackupVerification {
  readonly verdict: 'passed';
  /** e.g. `pg_verifybackup 18.6` */
  readonly tool: string;
  /** What was checked, in words. */
  readonly checks: string;
  readonly verifiedAt: string;
}

/** `pitr/<sysid>/base/<id>/manifest.json`: written last, after the backup was proven. */
export interface BaseBackupManifest {
  readonly manifestVersion: 1;
  readonly id: string;
  readonly kind: BaseBackupKind;
  /** The backup an incremental one builds on (itself full or incremental); a restore combines the chain. */
  readonly parentId?: string;
  readonly systemIdentifier: string;
  readonly serverVersion: string;
  readonly pgBasebackupVersion: string;
  readonly timeline: number;
  readonly startLsn: string;
  /** The backup is consistent once WAL up to here is replayed (its WAL is in the archive). */
  readonly stopLsn: string;
  /** pg_basebackup ran from startedAt to stoppedAt; finishedAt: proven and recorded. */
  readonly startedAt: string;
  readonly stoppedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  readonly file: string;
  readonly sizeBytes: number;
  readonly sha256: string;
  /** The tar stream's size before compression. */
  readonly rawBytes: number;
  readonly pgManifest: { readonly file: string; readonly sizeBytes: number; readonly sha256: string };
  readonly verification: BaseBackupVerification;
  readonly workflowId: string;
  readonly runId: string;
}

/** One base backup folder in a listing; incomplete ones (no manifest) are listed too, marked. */
export interface BaseBackupEntry {
  readonly id: string;
  readonly kind: BaseBackupKind;
  readonly time: string;
  readonly complete: boolean;
  readonly manifest?: BaseBackupManifest;
  readonly storedBytes: number;
}

/**
 * The backup a new incremental one builds on: the newest complete one (full or incremental, of
 * the same cluster: the listing is per cluster). Undefined: there is no full backup to start from.
 */
export function incrementalParent(entries: readonly BaseBackupEntry[]): BaseBackupManifest | undefined {
  const complete = entries.filter((e) => e.complete && e.manifest?.verification.verdict === 'passed');
  return [...complete].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).at(-1)?.manifest;
}

/**
 * Why an incremental backup does not follow its parent, or undefined when it does: its backup_label
 * must name the parent's start (what pg_combinebackup checks before combining).
 */
export function chainLinkProblem(
  parent: Pick<BaseBackupManifest, 'id' | 'startLsn' | 'timeline'>,
  label: BackupLabel,
): string | undefined {
  const from = label.incrementalFrom;
  if (!from) return `its backup_label has no INCREMENTAL FROM lines: it is not an incremental backup`;
  if (from.lsn !== parent.startLsn || from.timeline !== parent.timeline)
    return `it builds on the backup that started at ${from.lsn} on timeline ${from.timeline}, but its parent ${parent.id} started at ${parent.startLsn} on timeline ${parent.timeline}`;
  return undefined;
}

/** What `dbops basebackup` and the workflow's input carry. */
export interface BaseBackupWorkflowInput {
  readonly kind: BaseBackupKind;
  readonly trigger: 'manual' | 'scheduled';
}

export interface BaseBackupWorkflowResult {
  readonly id: string;
  readonly kind: BaseBackupKind;
  readonly parentId?: string;
  readonly systemIdentifier: string;
  readonly startLsn: string;
  readonly stopLsn: string;
  readonly sizeBytes: number;
  readonly rawBytes: number;
  readonly durationMs: number;
  readonly location: string;
  readonly verification: string;
}
