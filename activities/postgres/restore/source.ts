import { uncounted } from '../../../common/adopted';
import { type BackupEntry, type BackupManifest, backupStatus, parseBackupId } from '../../../common/backup';
import { FailureType, failure } from '../../../common/failures';
import { InputError } from '../../../common/names';
import { LATEST, LATEST_VERIFIED } from '../../../common/restore';
import { listBackupEntries, loadManifest, type BackupStore } from '../../storage';
import type { Digested } from '../dump-pipeline';

/** A backup chosen for restore or verification, with what the plan shows. */
export interface ResolvedBackup {
  readonly manifest: Omit<BackupManifest, 'tables'>;
  /** -1 with rows: an adopted backup not yet counted. */
  readonly tables: number;
  readonly rows: number;
  readonly verification: 'passed' | 'failed' | 'never';
}

function summarize(manifest: BackupManifest, entry?: BackupEntry): ResolvedBackup {
  const { tables, ...rest } = manifest;
  const verification = entry?.verification?.status ?? 'never';
  // Not 0 tables and 0 rows: an approver must see that nothing is known yet.
  if (uncounted(manifest)) return { manifest: rest, tables: -1, rows: -1, verification };
  return {
    manifest: rest,
    tables: tables.filter((t) => t.kind !== 'partitioned').length,
    rows: tables.filter((t) => t.kind !== 'partitioned').reduce((s, t) => s + t.rows, 0),
    verification,
  };
}

/** Resolves an id, `latest` or `latest-verified`; an unknown id fails listing the nearest ids. */
export async function resolveBackup(
  store: BackupStore,
  selector: string,
  database: string | undefined,
): Promise<ResolvedBackup> {
  if (selector === LATEST || selector === LATEST_VERIFIED) {
    if (!database)
      throw failure(FailureType.InvalidInput, `"${selector}" needs a database: pass --database or --target`);
    const entries = await listBackupEntries(store, database);
    const wanted = [...entries]
      .reverse()
      .find((e) =>
        selector === LATEST
          ? backupStatus(e) === 'verified' || backupStatus(e) === 'complete'
          : backupStatus(e) === 'verified',
      );
    if (!wanted?.manifest) {
      throw failure(
        FailureType.NotFound,
        `no ${selector === LATEST ? 'complete' : 'verified'} backup of database ${database} in ${store.describe(`${database}/`)} (${entries.length} backup folders); list them with "dbops backups list"${selector === LATEST_VERIFIED ? ' or verify one with "dbops verify latest"' : ''}`,
      );
    }
    // Loaded again through loadManifest: a manifest naming another backup or database is refused.
    return summarize(await loadManifest(store, wanted.id), wanted);
  }
  let parsed;
  try {
    parsed = parseBackupId(selector);
  } catch (err) {
    if (err instanceof InputError) throw failure(FailureType.InvalidInput, err.message);
    throw err;
  }
  const entries = await listBackupEntries(store, parsed.database);
  const entry = entries.find((e) => e.id === selector && e.complete);
  if (!entry) {
    const nearest = entries
      .filter((e) => e.complete)
      .sort(
        (a, b) =>
          Math.abs(Date.parse(a.time) - parsed.time.getTime()) -
          Math.abs(Date.parse(b.time) - parsed.time.getTime()),
      )
      .slice(0, 5)
      .map((e) => e.id);
    throw failure(
      FailureType.NotFound,
      `backup ${selector} not found in ${store.describe(`${parsed.database}/`)}${nearest.length ? `; nearest: ${nearest.join(', ')}` : `; database ${parsed.database} has no complete backups`}`,
    );
  }
  return summarize(await loadManifest(store, selector), entry);
}

/** Refuses (IntegrityCheckFailed) an archive whose size or SHA-256 is not the manifest's. */
export function assertDigest(
  manifest: Pick<BackupManifest, 'id' | 'sha256' | 'sizeBytes'>,
  digested: Digested,
): string {
  const digest = digested.digest();
  if (digested.bytes !== manifest.sizeBytes || digest !== manifest.sha256) {
    throw failure(
      FailureType.IntegrityCheckFailed,
      `backup ${manifest.id}: archive has ${digested.bytes} bytes with SHA-256 ${digest}, the manifest says ${manifest.sizeBytes} bytes with ${manifest.sha256}: it was replaced or damaged in the store, and nothing of it was restored; restore another backup ("dbops backups list")`,
    );
  }
  return digest;
}

/** Extension names from `pg_restore --list` output or a plain SQL dump. */
export function extensionsIn(text: string): string[] {
  const names = new Set<string>();
  for (const m of text.matchAll(/\bEXTENSION - (\S+)/g)) names.add(m[1]!);
  for (const m of text.matchAll(/^CREATE EXTENSION IF NOT EXISTS (\S+)/gm))
    names.add(m[1]!.replace(/"/g, ''));
  return [...names].sort();
}
