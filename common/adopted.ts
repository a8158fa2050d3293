/**
 * Backups dbops did not take: the spec's backup.sh files, taken over by `dbops backups adopt`.
 * Workflow-safe (no Node built-ins).
 */
import { type BackupManifest, isValidBackupId } from './backup';

/**
 * The spec's backup.sh wrote `<db>_<date +%Y%m%d_%H%M%S>.sql.gz` (a plain pg_dump, gzip, with
 * pg_dump's --verbose lines mixed in: its stderr went into the file) into BACKUP_DIR and
 * s3://$S3_BUCKET/backups/. The name's time is the container's clock, UTC unless TZ was set; as
 * UTC it is exactly a dbops backup id, so an adopted backup keeps its name.
 */
const SPEC_BACKUP_FILE = /^(.+)_(\d{8}_\d{6})\.sql\.gz$/;

/** The backup id a spec file name stands for, or why it is not one of the spec's backups. */
export function specBackupId(fileName: string): { id: string } | { problem: string } {
  const m = SPEC_BACKUP_FILE.exec(fileName);
  if (!m)
    return {
      problem: fileName.endsWith('_latest.sql.gz')
        ? "the spec's link to its newest backup, not a backup of its own"
        : "not named like a backup of the spec's backup.sh (<database>_<yyyymmdd>_<hhmmss>.sql.gz)",
    };
  const id = `${m[1]}_${m[2]}`;
  return isValidBackupId(id)
    ? { id }
    : { problem: `${JSON.stringify(m[1])}_${m[2]} is not a valid database name and time` };
}

/**
 * A backup dbops did not take: the spec's dump, checked and copied into the store by `dbops backups
 * adopt`. Its row counts are unknown until a test restore (verify) or a restore counts them.
 */
export interface AdoptedFrom {
  /** Where the file was read: `/backups/recsys_20261101_020000.sql.gz` or `s3://bucket/backups/…`. */
  readonly source: string;
  readonly adoptedAt: string;
  /** pg_dump --verbose lines mixed into the dump, removed before psql reads it. */
  readonly verboseLines: number;
  /**
   * `own`: the dump carries pg_dump's \restrict lock (pg_dump 17.6, 16.10, … and later);
   * `added`: an older pg_dump wrote none, and each restore locks psql with a fresh key of its own.
   */
  readonly restrictLock: 'own' | 'added';
  /** When the rows were counted (tables and schemaVersion filled in), and by which workflow. */
  readonly countedAt?: string;
  readonly countedBy?: string;
}

/** An adopted backup whose row counts are still unknown: nothing to compare a restore with yet. */
export const uncounted = (manifest: Pick<BackupManifest, 'adopted'>): boolean =>
  manifest.adopted !== undefined && manifest.adopted.countedAt === undefined;
