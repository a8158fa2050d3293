/**
 * Deterministic workflow and schedule IDs (workflow-safe: no Node built-ins).
 * A business ID makes a second start of the same operation a no-op instead of a duplicate run.
 * Each area adds its own helpers here.
 */

/** Task queue of the worker that runs dump activities, limited to DBOPS_MAX_CONCURRENT_DUMPS at a time. */
export function dumpTaskQueue(taskQueue: string): string {
  return `${taskQueue}-dumps`;
}

/** `2026-11-26T03:00:00Z`: Temporal's suffix for scheduled runs, reused for manual ones. */
export function minuteStamp(time: Date): string {
  return `${time.toISOString().slice(0, 16)}:00Z`;
}

/** Schedule of the daily backup of one database. */
export function backupScheduleId(database: string): string {
  return `backup-${database}`;
}

/**
 * Workflow ID of the backup of `database` for `scheduledTime`: a schedule's runs get
 * `backup-<db>-<time>` from Temporal (it appends the time to the action's ID, backupScheduleId),
 * and a manual backup uses the current minute in the same shape, so two starts in the same
 * minute make one backup.
 */
export function backupWorkflowId(database: string, scheduledTime: Date): string {
  return `${backupScheduleId(database)}-${minuteStamp(scheduledTime)}`;
}

/** Workflow ID of the Milvus maintenance of `collection` on the UTC day of `day`: one run per collection and day. */
export function milvusMaintenanceWorkflowId(collection: string, day: Date): string {
  return `milvus-maintenance/${collection}/${day.toISOString().slice(0, 10)}`;
}

/** Schedule of the nightly Milvus maintenance of one collection. */
export function milvusMaintenanceScheduleId(collection: string): string {
  return `milvus-maintenance-${collection}`;
}

/**
 * Workflow ID of the repair (`dbops milvus check --fix`) of `collection`: one repair of a collection
 * at a time; its earlier runs are listed under the same ID in the Web UI.
 */
export function milvusRepairWorkflowId(collection: string): string {
  return `milvus-repair/${collection}`;
}

/** Workflow ID of the partition maintenance of `database` on the UTC day of `day`: one run per database and day. */
export function partitionMaintenanceWorkflowId(database: string, day: Date): string {
  return `partition-maintenance/${database}/${day.toISOString().slice(0, 10)}`;
}

/** Schedule of the daily partition maintenance of one database. */
export function partitionMaintenanceScheduleId(database: string): string {
  return `partition-maintenance-${database}`;
}

/** Workflow ID of a restore into `target` requested at `requestedAt` (to the second): a repeated start is the same restore. */
export function restoreWorkflowId(target: string, requestedAt: Date): string {
  return `restore-${target}-${requestedAt.toISOString().slice(0, 19)}Z`;
}

/** Workflow ID of the test restore of one backup: a backup is verified by one run at a time. */
export function verifyWorkflowId(backupId: string): string {
  return `verify-${backupId}`;
}

/** Workflow ID of the rollback of one restore. */
export function restoreRollbackWorkflowId(restoreWorkflowId: string): string {
  return `rollback-${restoreWorkflowId}`;
}

/**
 * Workflow ID of the lock that lets one restore or rollback at a time replace `target`
 * (workflows/target-lock.ts): Temporal refuses a second running workflow with the same ID.
 */
export function targetLockWorkflowId(target: string): string {
  return `target-lock/${target}`;
}

/**
 * Workflow ID of the WAL archiver of one PostgreSQL cluster (its system identifier): one archiver
 * per server, so a second `dbops wal start` joins the running one.
 */
export function walArchiverWorkflowId(systemId: string): string {
  return `wal-archiver/${systemId}`;
}

/** Schedule of the full or the incremental base backups of the configured server (issue 20). */
export function baseBackupScheduleId(kind: 'full' | 'incremental'): string {
  return `basebackup-${kind}`;
}

/**
 * Workflow ID of a manual base backup of cluster `systemId` for the current minute:
 * `basebackup-<system identifier>-<kind>-<time>`, so two starts in the same minute make one base
 * backup, and two clusters' workers sharing a namespace never join each other's run (the archiver's
 * ID names the cluster too). Scheduled runs are `basebackup-<kind>-<time>` (baseBackupScheduleId,
 * Temporal appends the time): a deployment's schedules serve its one cluster.
 */
export function baseBackupWorkflowId(
  kind: 'full' | 'incremental',
  scheduledTime: Date,
  systemId: string,
): string {
  return `basebackup-${systemId}-${kind}-${minuteStamp(scheduledTime)}`;
}
