import { CancellationScope, log, workflowInfo } from '@temporalio/workflow';
import type { RestoreActivities } from '../activities/postgres';
import { FailureType, failure, failureTypeOf, rootMessage } from '../common/failures';
import { InputError } from '../common/names';
import {
  type VerifyWorkflowInput,
  type VerifyWorkflowResult,
  verifyScratchDatabaseName,
} from '../common/restore';
import { parseBackupId } from '../common/backup';
import { activitiesWith } from './activity-profiles';

/** Failures that say something about the backup (recorded as "failed"); others (server down) are not. */
const VERDICT_TYPES: readonly string[] = [
  FailureType.IntegrityCheckFailed,
  FailureType.VerificationFailed,
  FailureType.ProcessFailed,
];

/**
 * Proves a backup restores: check the archive, restore it into a scratch database, compare with
 * the manifest (tables, exact row counts, schema version, extensions, valid indexes), drop the
 * scratch database, and record verification.json beside the backup.
 */
export async function verifyBackupWorkflow(input: VerifyWorkflowInput): Promise<VerifyWorkflowResult> {
  const info = workflowInfo();
  const started = Date.now();
  const retry = input.maximumAttempts ? { retry: { maximumAttempts: input.maximumAttempts } } : {};
  const short = (summary: string) => activitiesWith<RestoreActivities>('short', { summary, ...retry });
  const streaming = (summary: string) =>
    activitiesWith<RestoreActivities>('streaming', { summary, ...retry });
  let scratch: string;
  try {
    scratch = verifyScratchDatabaseName(parseBackupId(input.backupId).database, new Date(started));
  } catch (err) {
    if (err instanceof InputError) throw failure(FailureType.InvalidInput, err.message);
    throw err;
  }
  const { backupId } = input;

  let verdict: { status: 'passed' | 'failed'; detail: string };
  try {
    const archive = await streaming(`check archive of ${backupId}`).checkBackupArchive({ backupId });
    await streaming(`restore ${backupId} into ${scratch}`).restoreBackupInto({
      backupId,
      database: scratch,
      jobs: input.jobs ?? 2,
    });
    const v = await streaming(`compare ${scratch} with the manifest`).verifyRestoredDatabase({
      database: scratch,
      backupId,
      extensions: archive.extensions,
    });
    verdict = {
      status: 'passed',
      detail: `${archive.check}; restored ${v.tables} tables, ${v.rows} rows: ${v.checks}`,
    };
  } catch (err) {
    if (!VERDICT_TYPES.includes(failureTypeOf(err) ?? '')) {
      await CancellationScope.nonCancellable(() => dropScratch(short, scratch));
      throw err;
    }
    verdict = { status: 'failed', detail: rootMessage(err) };
  }
  await CancellationScope.nonCancellable(() => dropScratch(short, scratch));
  await short(`record verification of ${backupId}`).recordBackupVerification({
    backupId,
    verification: { ...verdict, checkedAt: new Date(Date.now()).toISOString(), workflowId: info.workflowId },
  });
  const result: VerifyWorkflowResult = {
    backupId,
    ...verdict,
    scratchDatabase: scratch,
    durationMs: Date.now() - started,
  };
  if (verdict.status === 'failed') {
    throw failure(
      FailureType.VerificationFailed,
      `backup ${backupId} failed verification: ${verdict.detail}`,
      result,
    );
  }
  return result;
}

async function dropScratch(short: (s: string) => RestoreActivities, scratch: string): Promise<void> {
  try {
    await short(`drop scratch ${scratch}`).dropRestoreDatabase({ name: scratch });
  } catch (err) {
    log.error('could not drop the scratch database; `dbops db cleanup` removes it', {
      scratch,
      error: rootMessage(err),
    });
  }
}
