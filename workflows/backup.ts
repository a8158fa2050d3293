import {
  ActivityCancellationType,
  CancellationScope,
  isCancellation,
  log,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  ParentClosePolicy,
  startChild,
} from '@temporalio/workflow';
import type { DumpActivities } from '../activities/postgres';
import type { NotifyActivities } from '../activities/notify';
import type { StorageActivities } from '../activities/storage';
import {
  type BackupManifest,
  type BackupProgress,
  type BackupWorkflowInput,
  type BackupWorkflowResult,
  BACKUP_COMPRESSIONS,
  BACKUP_FORMATS,
  isValidDatabaseName,
  makeBackupId,
} from '../common/backup';
import { FailureType, failure, rootMessage } from '../common/failures';
import { workflowRunUrl } from '../common/links';
import { dumpTaskQueue, verifyWorkflowId } from '../common/ids';
import type { verifyBackupWorkflow } from './verify';
import { activitiesWith } from './activity-profiles';
import { DBOPS_BACKUP_ID } from '../common/search-attributes';
import { backupProgressQuery } from './backup-messages';

export interface BackupWorkflowSettings {
  /** Web UI base link for the notification (not a secret). */
  readonly uiUrl?: string;
  readonly defaultFormat: BackupManifest['format'];
  readonly defaultCompression: BackupManifest['compression'];
}

/**
 * One backup of one database: dump (in one snapshot, streamed into the store), re-read and check
 * the stored archive, write the manifest (last), move `latest`, apply retention, notify Slack.
 * Any failure or cancellation removes the incomplete folder and leaves `latest` where it was.
 */
export async function backupWorkflow(
  input: BackupWorkflowInput & Partial<BackupWorkflowSettings>,
): Promise<BackupWorkflowResult> {
  const info = workflowInfo();
  const started = Date.now();
  const format = input.format ?? input.defaultFormat ?? 'custom';
  const compression = input.compression ?? input.defaultCompression ?? 'zstd';
  if (!isValidDatabaseName(input.database)) {
    throw failure(FailureType.InvalidInput, `database name ${JSON.stringify(input.database)} is not valid`);
  }
  if (!BACKUP_FORMATS.includes(format) || !BACKUP_COMPRESSIONS.includes(compression)) {
    throw failure(
      FailureType.InvalidInput,
      `format ${format}/compression ${compression} is not valid: formats ${BACKUP_FORMATS.join('|')}, compressions ${BACKUP_COMPRESSIONS.join('|')}`,
    );
  }
  const backupId = makeBackupId(input.database, new Date(started));
  upsertSearchAttributes({ [DBOPS_BACKUP_ID.name]: [backupId] });
  let progress: BackupProgress = { phase: 'starting', backupId, database: input.database, bytes: 0 };
  setHandler(backupProgressQuery, () => progress);
  const setPhase = (phase: BackupProgress['phase'], bytes = progress.bytes) => {
    progress = { ...progress, phase, bytes };
  };

  const dumps = (summary: string) =>
    activitiesWith<DumpActivities>('streaming', {
      taskQueue: dumpTaskQueue(info.taskQueue),
      summary,
      // Let the activity kill pg_dump and abort the upload before the workflow cleans up.
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    });
  const storage = (summary: string) => activitiesWith<StorageActivities>('short', { summary });
  const notify = activitiesWith<NotifyActivities>('notify', {
    summary: `Slack: backup of ${input.database}`,
  });
  const runUrl = workflowRunUrl(input.uiUrl ?? '', info.namespace, info.workflowId, info.runId);

  try {
    setPhase('dumping');
    await storage('check the backup store is writable').probeBackupStore();
    const dump = await dumps(
      `pg_dump ${input.database} (${format}, ${compression}) → ${backupId}`,
    ).dumpDatabase({
      database: input.database,
      backupId,
      format,
      compression,
    });
    setPhase('verifying', dump.sizeBytes);
    const integrity = await dumps(`re-read and check ${dump.file} of ${backupId}`).verifyBackupArchive({
      database: input.database,
      backupId,
      file: dump.file,
      format,
      compression,
      sizeBytes: dump.sizeBytes,
      sha256: dump.sha256,
      pgDumpVersion: dump.pgDumpVersion,
    });
    setPhase('finalizing');
    const finishedAt = new Date(Date.now()).toISOString();
    const manifest: BackupManifest = {
      manifestVersion: 1,
      id: backupId,
      database: input.database,
      format,
      compression,
      file: dump.file,
      sizeBytes: dump.sizeBytes,
      sha256: dump.sha256,
      // Histories from before the check reported it carry no rawBytes there.
      rawBytes: integrity.rawBytes ?? dump.rawBytes,
      startedAt: new Date(started).toISOString(),
      finishedAt,
      durationMs: Date.now() - started,
      serverVersion: dump.serverVersion,
      pgDumpVersion: dump.pgDumpVersion,
      schemaVersion: dump.schemaVersion,
      statistics: dump.statistics,
      tables: dump.tables,
      integrity: { checkedAt: finishedAt, checks: integrity.checks },
      workflowId: info.workflowId,
      runId: info.runId,
    };
    const { location } = await storage(`write manifest of ${backupId} (completes it)`).writeBackupManifest(
      manifest,
    );
    await storage(`move latest of ${input.database} to ${backupId}`).moveLatestPointer({
      database: input.database,
      backupId,
    });

    let pruned: string[] = [];
    if (input.prune !== false) {
      setPhase('pruning');
      try {
        const r = await storage(`retention for ${input.database}`).pruneBackups({
          database: input.database,
          dryRun: false,
        });
        pruned = r.deleted.map((d) => d.id);
      } catch (err) {
        log.warn('retention failed; the backup itself succeeded', { error: rootMessage(err) });
      }
    }
    if (input.verify ?? input.trigger === 'scheduled') {
      // Proves the backup restores; runs on after this workflow completes and records verification.json.
      try {
        await startChild<typeof verifyBackupWorkflow>('verifyBackupWorkflow', {
          workflowId: verifyWorkflowId(backupId),
          args: [{ backupId }],
          parentClosePolicy: ParentClosePolicy.ABANDON,
        });
      } catch (err) {
        log.warn('could not start the verification; run "dbops verify" later', {
          backupId,
          error: rootMessage(err),
        });
      }
    }
    const result: BackupWorkflowResult = {
      outcome: 'succeeded',
      backupId,
      database: input.database,
      sizeBytes: dump.sizeBytes,
      durationMs: Date.now() - started,
      location,
      format,
      compression,
      sha256: dump.sha256,
      pruned,
    };
    setPhase('done');
    await notify.notifyBackup({
      outcome: 'succeeded',
      database: input.database,
      backupId,
      trigger: input.trigger,
      sizeBytes: dump.sizeBytes,
      durationMs: result.durationMs,
      location,
      runUrl,
    });
    return result;
  } catch (err) {
    const cancelled = isCancellation(err);
    setPhase(cancelled ? 'cancelled' : 'failed');
    // Cleanup must run even when the workflow is being cancelled.
    await CancellationScope.nonCancellable(async () => {
      try {
        await storage(`remove incomplete ${backupId}`).discardIncompleteBackup({
          database: input.database,
          backupId,
        });
      } catch (cleanupErr) {
        log.warn('could not remove the incomplete backup; retention removes it later', {
          error: rootMessage(cleanupErr),
        });
      }
      await notify.notifyBackup({
        outcome: cancelled ? 'cancelled' : 'failed',
        database: input.database,
        backupId,
        trigger: input.trigger,
        durationMs: Date.now() - started,
        error: rootMessage(err),
        runUrl,
      });
    });
    throw err;
  }
}
