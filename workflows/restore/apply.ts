import { CancellationScope, isCancellation, log } from '@temporalio/workflow';
import { rootMessage } from '../../common/failures';
import type { ApprovalRecord } from '../../common/restore';
import type { Planned, RestoreRun } from './run';

/** 3. Shadow restore: the backup into a fresh shadow database. */
export async function restoreShadow(
  run: RestoreRun,
  { plan }: Planned,
): Promise<{ statisticsRestored: boolean }> {
  run.phase('restoring');
  return run.streaming(`restore ${plan.backupId} into ${plan.shadowDatabase}`).restoreBackupInto({
    backupId: plan.backupId,
    database: plan.shadowDatabase,
    jobs: run.input.jobs,
  });
}

/** 4. Verify: the shadow against the backup's manifest (tables, exact row counts, extensions, schema version). */
export async function verifyShadow(run: RestoreRun, { plan }: Planned): Promise<void> {
  run.phase('verifying');
  await run
    .streaming(`verify ${plan.shadowDatabase} against the manifest of ${plan.backupId}`)
    .verifyRestoredDatabase({
      database: plan.shadowDatabase,
      backupId: plan.backupId,
      extensions: [...plan.extensions],
    });
}

/** 5. Cut-over: target → pre-restore, shadow → target, in one transaction. */
export async function cutOver(run: RestoreRun, { plan }: Planned) {
  run.phase('cutting-over');
  return run.short(`swap ${plan.shadowDatabase} in for ${plan.target}`).swapInRestoredDatabase({
    target: plan.target,
    shadow: plan.shadowDatabase,
    preRestore: plan.preRestoreDatabase,
    workflowId: run.info.workflowId,
    keepUntil: new Date(Date.now() + run.input.keepDays * 86_400_000).toISOString(),
  });
}

/**
 * Runs the steps before and including the cut-over. On failure or cancellation, the shadow is
 * dropped (even while the workflow is being cancelled) and Slack told; the target is as it was.
 */
export async function dropShadowOnFailure<T>(
  run: RestoreRun,
  { plan }: Planned,
  approval: ApprovalRecord,
  steps: () => Promise<T>,
): Promise<T> {
  try {
    return await steps();
  } catch (err) {
    const cancelled = isCancellation(err);
    run.phase('cleaning-up', { error: rootMessage(err) });
    await CancellationScope.nonCancellable(async () => {
      try {
        await run
          .short(`drop shadow ${plan.shadowDatabase}`)
          .dropRestoreDatabase({ name: plan.shadowDatabase });
      } catch (dropErr) {
        log.error('could not drop the shadow database; `dbops db cleanup` removes it', {
          shadow: plan.shadowDatabase,
          error: rootMessage(dropErr),
        });
      }
      await run.tell(
        `:x: restore of ${plan.target} from ${plan.backupId} ${cancelled ? 'cancelled' : 'failed'}; ${plan.target} is unchanged`,
        [
          { title: 'Approved by', value: approval.by },
          { title: 'Error', value: rootMessage(err).slice(0, 1500) },
        ],
      );
    });
    run.phase('failed', { error: rootMessage(err) });
    throw err;
  }
}

/** An archive with planner statistics (PostgreSQL 18+) brought them along: no ANALYZE needed. */
export async function analyzeUnlessRestored(
  run: RestoreRun,
  { plan }: Planned,
  statisticsRestored: boolean,
): Promise<void> {
  if (statisticsRestored) return;
  run.phase('analyzing');
  try {
    await run.streaming(`ANALYZE ${plan.target}`).analyzeDatabase({ database: plan.target });
  } catch (err) {
    // The restore is done; stale statistics only slow queries until autovacuum analyzes.
    log.warn('ANALYZE after restore failed', { target: plan.target, error: rootMessage(err) });
  }
}
