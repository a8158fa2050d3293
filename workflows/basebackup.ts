import {
  ActivityCancellationType,
  CancellationScope,
  isCancellation,
  log,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type { BaseBackupActivities, BaseBackupCatalogActivities } from '../activities/postgres/basebackup';
import type { StorageActivities } from '../activities/storage';
import {
  BASE_BACKUP_KINDS,
  type BaseBackupManifest,
  type BaseBackupWorkflowInput,
  type BaseBackupWorkflowResult,
  makeBaseBackupId,
} from '../common/basebackup';
import { FailureType, failure, rootMessage } from '../common/failures';
import { dumpTaskQueue } from '../common/ids';
import { DBOPS_BACKUP_ID } from '../common/search-attributes';
import { activitiesWith } from './activity-profiles';

export interface BaseBackupWorkflowSettings {
  /** How long pg_basebackup and its proof may go without a heartbeat before a retry elsewhere; drills pass seconds. */
  readonly heartbeatTimeout?: Duration;
}

/**
 * One physical base backup of the configured server (issue 20): plan (the cluster; an incremental
 * backup's parent, refused without one or with summarize_wal off), pg_basebackup | zstd into the
 * store, the stored object read back and proven with pg_verifybackup, then the manifest, last.
 * Any failure or cancellation removes what was written: a base backup without a manifest never
 * existed for a listing, a restore or the next incremental backup.
 */
export async function baseBackupWorkflow(
  input: BaseBackupWorkflowInput & BaseBackupWorkflowSettings,
): Promise<BaseBackupWorkflowResult> {
  if (!BASE_BACKUP_KINDS.includes(input.kind))
    throw failure(
      FailureType.InvalidInput,
      `base backup kind ${JSON.stringify(input.kind)} is not valid: ${BASE_BACKUP_KINDS.join('|')}`,
    );
  const info = workflowInfo();
  const started = Date.now();
  const streaming = (summary: string) =>
    activitiesWith<BaseBackupActivities>('streaming', {
      taskQueue: dumpTaskQueue(info.taskQueue),
      summary,
      ...(input.heartbeatTimeout ? { heartbeatTimeout: input.heartbeatTimeout } : {}),
      // Let the activity kill pg_basebackup/zstd and abort the upload before the workflow cleans up.
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    });
  const catalog = (summary: string) => activitiesWith<BaseBackupCatalogActivities>('short', { summary });

  const plan = await catalog(`plan a ${input.kind} base backup`).planBaseBackup({ kind: input.kind });
  const { systemIdentifier, parent } = plan;
  const backupId = makeBaseBackupId(new Date(started), input.kind);
  upsertSearchAttributes({ [DBOPS_BACKUP_ID.name]: [backupId] });
  try {
    await activitiesWith<StorageActivities>('short', {
      summary: 'check the backup store is writable',
    }).probeBackupStore();
    const taken = await streaming(
      `pg_basebackup | zstd → ${backupId}${parent ? ` (incremental on ${parent.id})` : ''}`,
    ).takeBaseBackup({
      systemIdentifier,
      backupId,
      kind: input.kind,
      ...(parent && { parentId: parent.id }),
    });
    const proof = await streaming(`read back ${backupId} and pg_verifybackup it`).verifyBaseBackup({
      systemIdentifier,
      backupId,
      kind: input.kind,
      sizeBytes: taken.sizeBytes,
      sha256: taken.sha256,
      serverMajor: plan.serverMajor,
      ...(parent && { parent: { id: parent.id, startLsn: parent.startLsn, timeline: parent.timeline } }),
    });
    const manifest: BaseBackupManifest = {
      manifestVersion: 1,
      id: backupId,
      kind: input.kind,
      ...(parent && { parentId: parent.id }),
      systemIdentifier,
      serverVersion: taken.serverVersion,
      pgBasebackupVersion: taken.pgBasebackupVersion,
      timeline: proof.label.timeline,
      startLsn: proof.label.startLsn,
      stopLsn: proof.pgManifest.stopLsn,
      startedAt: taken.startedAt,
      stoppedAt: taken.stoppedAt,
      finishedAt: new Date(Date.now()).toISOString(),
      durationMs: Date.now() - started,
      file: taken.file,
      sizeBytes: taken.sizeBytes,
      sha256: taken.sha256,
      rawBytes: proof.rawBytes,
      pgManifest: {
        file: proof.pgManifest.file,
        sizeBytes: proof.pgManifest.sizeBytes,
        sha256: proof.pgManifest.sha256,
      },
      verification: proof.verification,
      workflowId: info.workflowId,
      runId: info.runId,
    };
    const { location } = await catalog(
      `write manifest of ${backupId} (completes it)`,
    ).writeBaseBackupManifest(manifest);
    return {
      id: backupId,
      kind: input.kind,
      ...(parent && { parentId: parent.id }),
      systemIdentifier,
      startLsn: manifest.startLsn,
      stopLsn: manifest.stopLsn,
      sizeBytes: manifest.sizeBytes,
      rawBytes: manifest.rawBytes,
      durationMs: manifest.durationMs,
      location,
      verification: manifest.verification.checks,
    };
  } catch (err) {
    // Cleanup runs even while the workflow is being cancelled.
    await CancellationScope.nonCancellable(async () => {
      try {
        await catalog(`remove incomplete ${backupId}`).discardIncompleteBaseBackup({
          systemIdentifier,
          backupId,
        });
      } catch (cleanupErr) {
        log.warn('could not remove the incomplete base backup', { backupId, error: rootMessage(cleanupErr) });
      }
    });
    log.warn(isCancellation(err) ? 'base backup cancelled' : 'base backup failed', {
      backupId,
      error: rootMessage(err),
    });
    throw err;
  }
}
