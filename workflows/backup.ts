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
import type { Duration } from '@temporalio/common';
import type { DumpActivities } from '../activities/postgres';
import type { BackupNotice, NotifyActivities } from '../activities/notify';
import type { StorageActivities } from '../activities/storage';
import {
  type BackupManifest,
  type BackupProgress,
  type BackupWorkflowInput,
  type BackupWorkflowResult,
  BACKUP_COMPRESSIONS,
  BACKUP_FORMATS,
  makeBackupId,
} from '../common/backup';
import { type DumpOptions, FULL_DUMP, parseDumpOptions } from '../common/dump-options';
import { FailureType, failure, rootMessage } from '../common/failures';
import { workflowRunUrl } from '../common/links';
import { InputError, isValidDatabaseName } from '../common/names';
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
  /**
   * What pg_dump leaves out (DBOPS_DUMP_NO_OWNER / DBOPS_DUMP_NO_PRIVILEGES), carried like the
   * format so a run's history shows how it dumped; absent (older clients, histories): owners and
   * grants are dumped.
   */
  readonly dumpOptions?: DumpOptions;
  /**
   * How long the dump may go without a heartbeat before Temporal retries it on another worker: a
   * killed worker is noticed only this way. Default: the streaming profile's; drills pass seconds.
   */
  readonly dumpHeartbeatTimeout?: Duration;
}

/**
 * One backup of one database: dump (in one snapshot, streamed into the store), re-read and check
 * the stored archive, write the manifest (last), move `latest`, apply retention, notify Slack.
 * Any failure or cancellation removes the incomplete folder and leaves `latest` where it was.
 */
export async function backupWorkflow(
  input: BackupWorkflowInput & Partial<BackupWorkflowSettings>,
): Promise<BackupWorkflowResult> {
  const run = new BackupRun(input);
  try {
    const dump = await dumpAndCheck(run);
    const location = await complete(run, dump);
    const pruned = await applyRetention(run);
    await startVerification(run);
    const result: BackupWorkflowResult = {
      outcome: 'succeeded',
      backupId: run.backupId,
      database: input.database,
      sizeBytes: dump.sizeBytes,
      durationMs: Date.now() - run.started,
      location,
      format: run.format,
      compression: run.compression,
      sha256: dump.sha256,
      pruned,
    };
    run.setPhase('done');
    await run.notify({
      outcome: 'succeeded',
      sizeBytes: dump.sizeBytes,
      durationMs: result.durationMs,
      location,
    });
    return result;
  } catch (err) {
    await discardIncomplete(run, err);
    throw err;
  }
}

/** One backup: its checked input, id, progress (answered by backupProgressQuery) and activities. */
class BackupRun {
  readonly info = workflowInfo();
  readonly started = Date.now();
  readonly format: BackupManifest['format'];
  readonly compression: BackupManifest['compression'];
  readonly dumpOptions: DumpOptions;
  readonly backupId: string;
  private progress: BackupProgress;

  constructor(readonly input: BackupWorkflowInput & Partial<BackupWorkflowSettings>) {
    this.format = input.format ?? input.defaultFormat ?? 'custom';
    this.compression = input.compression ?? input.defaultCompression ?? 'zstd';
    if (!isValidDatabaseName(input.database)) {
      throw failure(FailureType.InvalidInput, `database name ${JSON.stringify(input.database)} is not valid`);
    }
    if (!BACKUP_FORMATS.includes(this.format) || !BACKUP_COMPRESSIONS.includes(this.compression)) {
      throw failure(
        FailureType.InvalidInput,
        `format ${this.format}/compression ${this.compression} is not valid: formats ${BACKUP_FORMATS.join('|')}, compressions ${BACKUP_COMPRESSIONS.join('|')}`,
      );
    }
    try {
      this.dumpOptions = parseDumpOptions(input.dumpOptions);
    } catch (err) {
      if (err instanceof InputError) throw failure(FailureType.InvalidInput, err.message);
      throw err;
    }
    this.backupId = makeBackupId(input.database, new Date(this.started));
    upsertSearchAttributes({ [DBOPS_BACKUP_ID.name]: [this.backupId] });
    this.progress = { phase: 'starting', backupId: this.backupId, database: input.database, bytes: 0 };
    setHandler(backupProgressQuery, () => this.progress);
  }

  setPhase(phase: BackupProgress['phase'], bytes = this.progress.bytes): void {
    this.progress = { ...this.progress, phase, bytes };
  }

  /** pg_dump and the re-read check run on the dumps worker, which limits how many run at once. */
  dumps(summary: string) {
    return activitiesWith<DumpActivities>('streaming', {
      taskQueue: dumpTaskQueue(this.info.taskQueue),
      summary,
      ...(this.input.dumpHeartbeatTimeout ? { heartbeatTimeout: this.input.dumpHeartbeatTimeout } : {}),
      // Let the activity kill pg_dump and abort the upload before the workflow cleans up.
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    });
  }

  storage(summary: string) {
    return activitiesWith<StorageActivities>('short', { summary });
  }

  /** Slack, best effort (notifyBackup reports, never throws). */
  async notify(notice: Pick<BackupNotice, 'outcome' | 'durationMs'> & Partial<BackupNotice>): Promise<void> {
    const { notifyBackup } = activitiesWith<NotifyActivities>('notify', {
      summary: `Slack: backup of ${this.input.database}`,
    });
    const { info } = this;
    await notifyBackup({
      database: this.input.database,
      backupId: this.backupId,
      trigger: this.input.trigger,
      runUrl: workflowRunUrl(this.input.uiUrl ?? '', info.namespace, info.workflowId, info.runId),
      ...notice,
    });
  }
}

/** Dump into the store, then re-read the stored archive and prove it (size, SHA-256, readable). */
async function dumpAndCheck(run: BackupRun) {
  const { database } = run.input;
  const { backupId, format, compression, dumpOptions } = run;
  run.setPhase('dumping');
  await run.storage('check the backup store is writable').probeBackupStore();
  const dump = await run
    .dumps(`pg_dump ${database} (${format}, ${compression}) → ${backupId}`)
    .dumpDatabase({ database, backupId, format, compression, dumpOptions });
  run.setPhase('verifying', dump.sizeBytes);
  const integrity = await run.dumps(`re-read and check ${dump.file} of ${backupId}`).verifyBackupArchive({
    database,
    backupId,
    file: dump.file,
    format,
    compression,
    sizeBytes: dump.sizeBytes,
    sha256: dump.sha256,
    pgDumpVersion: dump.pgDumpVersion,
  });
  return { ...dump, integrity };
}

/** Write the manifest (the backup exists from then on) and move `latest` to it; returns its location. */
async function complete(run: BackupRun, dump: Awaited<ReturnType<typeof dumpAndCheck>>): Promise<string> {
  const { database } = run.input;
  const { backupId, info } = run;
  run.setPhase('finalizing');
  const finishedAt = new Date(Date.now()).toISOString();
  const manifest: BackupManifest = {
    manifestVersion: 1,
    id: backupId,
    database,
    format: run.format,
    compression: run.compression,
    file: dump.file,
    sizeBytes: dump.sizeBytes,
    sha256: dump.sha256,
    // Histories from before the check reported it carry no rawBytes there.
    rawBytes: dump.integrity.rawBytes ?? dump.rawBytes,
    startedAt: new Date(run.started).toISOString(),
    finishedAt,
    durationMs: Date.now() - run.started,
    serverVersion: dump.serverVersion,
    pgDumpVersion: dump.pgDumpVersion,
    schemaVersion: dump.schemaVersion,
    statistics: dump.statistics,
    // What pg_dump ran with, as the activity reports it (histories from before the option: none).
    dumpOptions: dump.dumpOptions ?? FULL_DUMP,
    // Encrypted on the worker (DBOPS_BACKUP_AGE_RECIPIENTS): its recipients' fingerprints.
    ...(dump.encryption && { encryption: dump.encryption }),
    tables: dump.tables,
    integrity: { checkedAt: finishedAt, checks: dump.integrity.checks },
    workflowId: info.workflowId,
    runId: info.runId,
  };
  const { location } = await run
    .storage(`write manifest of ${backupId} (completes it)`)
    .writeBackupManifest(manifest);
  await run.storage(`move latest of ${database} to ${backupId}`).moveLatestPointer({ database, backupId });
  return location;
}

/** Retention after a good backup; its failure does not fail the backup. Returns the ids deleted. */
async function applyRetention(run: BackupRun): Promise<string[]> {
  if (run.input.prune === false) return [];
  run.setPhase('pruning');
  try {
    const r = await run.storage(`retention for ${run.input.database}`).pruneBackups({
      database: run.input.database,
      dryRun: false,
    });
    return r.deleted.map((d) => d.id);
  } catch (err) {
    log.warn('retention failed; the backup itself succeeded', { error: rootMessage(err) });
    return [];
  }
}

/** Proves the backup restores: a child that runs on after this workflow completes and records verification.json. */
async function startVerification(run: BackupRun): Promise<void> {
  if (!(run.input.verify ?? run.input.trigger === 'scheduled')) return;
  const { backupId } = run;
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

/** After a failure or cancellation: remove what was written (never a complete backup) and tell Slack. */
async function discardIncomplete(run: BackupRun, err: unknown): Promise<void> {
  const cancelled = isCancellation(err);
  run.setPhase(cancelled ? 'cancelled' : 'failed');
  // Cleanup must run even when the workflow is being cancelled.
  await CancellationScope.nonCancellable(async () => {
    try {
      await run.storage(`remove incomplete ${run.backupId}`).discardIncompleteBackup({
        database: run.input.database,
        backupId: run.backupId,
      });
    } catch (cleanupErr) {
      log.warn('could not remove the incomplete backup; retention removes it later', {
        error: rootMessage(cleanupErr),
      });
    }
    await run.notify({
      outcome: cancelled ? 'cancelled' : 'failed',
      durationMs: Date.now() - run.started,
      error: rootMessage(err),
    });
  });
}
