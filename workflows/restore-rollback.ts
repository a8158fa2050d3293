import { log, workflowInfo } from '@temporalio/workflow';
import type { ApprovalActivities } from '../activities/approvals';
import type { NotifyActivities } from '../activities/notify';
import type { RestoreActivities } from '../activities/postgres';
import { type Signer, signedBy, statementProblem } from '../common/approvals';
import { FailureType, failure, rootMessage } from '../common/failures';
import type { RollbackInput, RollbackResult } from '../common/restore';
import { activitiesWith } from './activity-profiles';
import { withTargetLock } from './target-lock';

/**
 * Swaps the kept pre-restore database back in for the target; the replaced one is kept in turn.
 * A rollback is a decision like an approval: where the worker requires signatures it must be
 * signed by an allowed signer for this run, target and copy; it holds the target's lock, swaps back
 * only the copy that restore kept (its mark names the restore), and tells Slack either way.
 */
export async function restoreRollbackWorkflow(input: RollbackInput): Promise<RollbackResult> {
  const { workflowId } = workflowInfo();
  const approvals = (summary: string) => activitiesWith<ApprovalActivities>('short', { summary });
  const policy = await approvals("read the worker's restore policy").restorePolicy();
  let by = input.requestedBy?.trim() || 'unnamed';
  let signer: Signer | null = null;
  if (policy.signaturesRequired) {
    if (!input.signed) {
      throw failure(
        FailureType.Refused,
        `unsigned rollback: this worker requires signed decisions (DBOPS_APPROVERS_FILE); run "dbops restore rollback ${input.restoreWorkflowId} --key <your SSH key>"`,
      );
    }
    signer = await approvals('check the signature on the rollback').verifySignedStatement({
      signed: input.signed,
    });
    const problem = statementProblem(
      input.signed.statement,
      {
        kind: 'rollback',
        workflowId,
        restoreWorkflowId: input.restoreWorkflowId,
        target: input.target,
        preRestoreDatabase: input.preRestoreDatabase,
      },
      Date.now(),
    );
    if (problem) throw failure(FailureType.Refused, `rollback refused: ${problem}`);
    by = signer.principal;
  }
  const who = signedBy({ by, signer });
  const { rollbackRestore } = activitiesWith<RestoreActivities>('cutover', {
    summary: `swap ${input.preRestoreDatabase} back in for ${input.target}`,
  });
  try {
    const result = await withTargetLock(input.target, () =>
      rollbackRestore({
        target: input.target,
        preRestoreDatabase: input.preRestoreDatabase,
        restoreWorkflowId: input.restoreWorkflowId,
        keepDays: Math.max(policy.keepDays, input.keepDays ?? 0),
        workflowId,
        now: new Date(Date.now()).toISOString(),
      }),
    );
    await tell(`:rewind: ${input.target} rolled back to ${input.preRestoreDatabase} by ${who}`, [
      { title: 'Undoes', value: input.restoreWorkflowId },
      { title: 'Restored database kept as', value: result.replacedKeptAs },
    ]);
    return { ...result, by, signer };
  } catch (err) {
    await tell(`:x: rollback of ${input.target} to ${input.preRestoreDatabase} by ${who} failed`, [
      { title: 'Error', value: rootMessage(err) },
    ]);
    throw err;
  }
}

/** Best effort: a Slack failure is logged, never fails the rollback. */
async function tell(text: string, fields: { title: string; value: string }[]): Promise<void> {
  const notify = activitiesWith<NotifyActivities>('notify', { summary: 'Slack: rollback outcome' });
  try {
    await notify.notifySlack({ text, fields });
  } catch (err) {
    log.warn('Slack notification failed', { error: rootMessage(err) });
  }
}
