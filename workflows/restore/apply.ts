import { CancellationScope, isCancellation, log } from '@temporalio/workflow';
import { rootMessage } from '../../common/failures';
import { type ApprovalRecord, signedBy } from '../../common/approvals';
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
  return run.cutover(`swap ${plan.shadowDatabase} in for ${plan.target}`).swapInRestoredDatabase({
    target: plan.target,
    shadow: plan.shadowDatabase,
    preRestore: plan.preRestoreDatabase,
    workflowId: run.info.workflowId,
    keepUntil: new Date(Date.now() + run.policy.keepDays * 86_400_000).toISOString(),
  });
}

/** What steps 3 to 5 did. */
export interface Applied {
  readonly statisticsRestored: boolean;
  readonly cutover: { readonly targetExisted: boolean; readonly cutoverMs: number | null };
  /** Set when the swap committed although the workflow saw the cut-over fail or was cancelled. */
  readonly note?: string;
}

/**
 * Steps 3 to 5. On failure or cancellation the database, not the error, says what happened: an
 * attempt may have committed the swap and died before reporting it, or a cancel may come after the
 * commit. Connections this run blocked are let in again; a committed swap is reported as the
 * restore it is; otherwise the shadow is dropped (even while the workflow is being cancelled) and
 * Slack told that the target is unchanged, which the database has just confirmed.
 */
export async function applyRestore(
  run: RestoreRun,
  planned: Planned,
  approval: ApprovalRecord,
  /** Steps 3 and 4; a point-in-time restore filled and verified its shadow before the approval. */
  fill: () => Promise<{ statisticsRestored: boolean }> = async () => {
    const filled = await restoreShadow(run, planned);
    await verifyShadow(run, planned);
    return filled;
  },
): Promise<Applied> {
  let statisticsRestored = false;
  try {
    ({ statisticsRestored } = await fill());
    return { statisticsRestored, cutover: await cutOver(run, planned) };
  } catch (err) {
    const cancelled = isCancellation(err);
    run.phase('cleaning-up', { error: rootMessage(err) });
    const state = await CancellationScope.nonCancellable(() => settle(run, planned));
    if (state?.swapped) {
      const note = `${cancelled ? 'cancelled' : `failed (${rootMessage(err)})`} after the cut-over had committed`;
      log.warn('the cut-over committed: the restore is done', { target: planned.plan.target, note });
      return { statisticsRestored, cutover: { targetExisted: state.kept, cutoverMs: null }, note };
    }
    await CancellationScope.nonCancellable(() =>
      dropShadowAndTell(
        run,
        planned,
        approval,
        err,
        state ? 'is unchanged' : 'could not be checked (is it swapped?): look at it',
      ),
    );
    run.phase('failed', { error: rootMessage(err) });
    throw err;
  }
}

/** The cut-over's outcome read from the database (undefined when it cannot be read). */
async function settle(run: RestoreRun, { plan }: Planned) {
  try {
    return await run.cutover(`settle the cut-over of ${plan.target}`).settleRestoreCutOver({
      target: plan.target,
      shadow: plan.shadowDatabase,
      preRestore: plan.preRestoreDatabase,
      workflowId: run.info.workflowId,
    });
  } catch (err) {
    log.error('could not read whether the cut-over committed', {
      target: plan.target,
      error: rootMessage(err),
    });
    return undefined;
  }
}

export async function dropShadowAndTell(
  run: RestoreRun,
  { plan }: Planned,
  approval: ApprovalRecord,
  err: unknown,
  targetState: string,
): Promise<void> {
  try {
    await run.short(`drop shadow ${plan.shadowDatabase}`).dropRestoreDatabase({ name: plan.shadowDatabase });
  } catch (dropErr) {
    log.error('could not drop the shadow database; `dbops db cleanup` removes it', {
      shadow: plan.shadowDatabase,
      error: rootMessage(dropErr),
    });
  }
  await run.tell(
    `:x: restore of ${plan.target} from ${plan.backupId} ${isCancellation(err) ? 'cancelled' : 'failed'}; ${plan.target} ${targetState}`,
    [
      { title: 'Approved by', value: signedBy(approval) },
      { title: 'Error', value: rootMessage(err).slice(0, 1500) },
    ],
  );
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
