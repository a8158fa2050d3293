import {
  ActivityCancellationType,
  CancellationScope,
  isCancellation,
  log,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type {
  BaseBackupActivities,
  BaseBackupCatalogActivities,
  BaseBackupPruneResult,
} from '../activities/postgres/basebackup';
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

/**
 * What a base backup run returns: the backup, and what retention pruned after it (`pruned`), or
 * why retention failed (`pruneError`: the backup itself succeeded; the next run prunes).
 */
export type BaseBackupRunResult = BaseBackupWorkflowResult & {
  readonly pruned?: BaseBackupPruneResult;
  readonly pruneError?: string;
};

export interface BaseBackupWorkflowSettings {
  /** How long pg_basebackup and its proof may go without a heartbeat before a retry elsewhere; drills pass seconds. */
  readonly heartbeatTimeout?: Duration;
}

/**
 * One physical base backup of the configured server (issue 20): plan (the cluster; an incremental
 * backup's parent, refused without one or with summarize_wal off), pg_basebackup | zstd into the
 * store, the stored object read back and proven with pg_verifybackup, then the manifest, last.
 * Any failure or cancellation removes what was written: a base backup without a manifest never
 * existed for a listing, a restore or the next incremental backup. After a good one, retention
 * (the worker's DBOPS_BASEBACKUP_KEEP_FULL) prunes old chains and the WAL only they needed.
 */
export async function baseBackupWorkflow(
  input: BaseBackupWorkflowInput & BaseBackupWorkflowSettings,
): Promise<BaseBackupRunResult> {
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

  const plan = await catalog(`plan a ${input.kind} base backup`).planBaseBackup({
    kind: input.kind,
    fallBackToFull: input.trigger === 'scheduled',
  });
  const { systemIdentifier, parent, kind } = plan;
  const backupId = makeBaseBackupId(new Date(started), kind);
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
      kind,
      ...(parent && { parentId: parent.id }),
    });
    const proof = await streaming(`read back ${backupId} and pg_verifybackup it`).verifyBaseBackup({
      systemIdentifier,
      backupId,
      kind,
      sizeBytes: taken.sizeBytes,
      sha256: taken.sha256,
      serverMajor: plan.serverMajor,
      ...(parent && { parent: { id: parent.id, startLsn: parent.startLsn, timeline: parent.timeline } }),
    });
    const manifest: BaseBackupManifest = {
      manifestVersion: 1,
      id: backupId,
      kind,
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
    const retention = await applyRetention(systemIdentifier, input.heartbeatTimeout);
    return {
      id: backupId,
      kind,
      ...(parent && { parentId: parent.id }),
      systemIdentifier,
      startLsn: manifest.startLsn,
      stopLsn: manifest.stopLsn,
      sizeBytes: manifest.sizeBytes,
      rawBytes: manifest.rawBytes,
      durationMs: manifest.durationMs,
      location,
      verification: manifest.verification.checks,
      ...retention,
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

/**
 * Base backup retention after a good base backup. Its failure does not fail the backup (which is
 * complete and listed): it is logged and returned, and the next base backup prunes again.
 */
async function applyRetention(
  systemIdentifier: string,
  heartbeatTimeout: Duration | undefined,
): Promise<Pick<BaseBackupRunResult, 'pruned' | 'pruneError'>> {
  try {
    const pruned = await activitiesWith<BaseBackupCatalogActivities>('streaming', {
      summary: 'base backup retention: old chains and the WAL only they needed',
      ...(heartbeatTimeout ? { heartbeatTimeout } : {}),
    }).pruneBaseBackups({ systemIdentifier });
    log.info('base backup retention', {
      keepFull: pruned.keepFull,
      kept: pruned.kept,
      deleted: pruned.deleted.map((d) => d.id),
      incompleteRemoved: pruned.incompleteRemoved.map((d) => d.id),
      walSegments: pruned.wal.segments,
      walFrom: pruned.wal.keptFrom,
      bytes: pruned.bytes,
    });
    if (pruned.wal.skippedTimelines.length > 0)
      log.warn(
        'base backup retention left WAL timelines alone: no readable sidecar gives their segment size',
        {
          timelines: pruned.wal.skippedTimelines,
        },
      );
    return { pruned };
  } catch (err) {
    if (isCancellation(err)) throw err;
    log.warn('base backup retention failed; the base backup itself succeeded', { error: rootMessage(err) });
    return { pruneError: rootMessage(err) };
  }
}
