import {
  type ApplicationFailure,
  CancellationScope,
  ChildWorkflowCancellationType,
  log,
  condition,
  defineSignal,
  ParentClosePolicy,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { ApprovalActivities } from '../activities/approvals';
import { FailureType, failure, rootMessage } from '../common/failures';
import { targetLockWorkflowId } from '../common/ids';
import { activitiesWith } from './activity-profiles';

export const releaseTargetLockSignal = defineSignal('releaseTargetLock');

/**
 * The lock on one target database: running while a restore or rollback may replace it. Its ID is
 * the target's (targetLockWorkflowId), so Temporal itself refuses a second holder; it is the
 * holder's child, closed by the holder's release or, if the holder dies, by its parent-close policy.
 */
export async function targetLockWorkflow(_input: { target: string; holder: string }): Promise<void> {
  let released = false;
  setHandler(releaseTargetLockSignal, () => {
    released = true;
  });
  await condition(() => released);
}

/**
 * Runs `fn` holding the lock on `target`; a second restore or rollback of the same target is
 * refused naming the workflow that holds it. The lock is released however `fn` ends.
 */
export async function withTargetLock<T>(target: string, fn: () => Promise<T>): Promise<T> {
  const lockWorkflowId = targetLockWorkflowId(target);
  const holder = workflowInfo().workflowId;
  let lock;
  try {
    lock = await startChild(targetLockWorkflow, {
      workflowId: lockWorkflowId,
      args: [{ target, holder }],
      // A cancel of the holder must not end the lock while the holder still cleans up (drops its
      // shadow, reports): the release below ends it, or the holder's close does (TERMINATE).
      cancellationType: ChildWorkflowCancellationType.ABANDON,
      parentClosePolicy: ParentClosePolicy.TERMINATE,
      staticSummary: `${target} is being replaced by ${holder}: no other restore or rollback of it until this ends`,
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    const { targetLockHolder } = activitiesWith<ApprovalActivities>('short', {
      summary: `who holds ${target}`,
    });
    const other = await targetLockHolder({ lockWorkflowId });
    throw busy(target, other ?? `the holder of ${lockWorkflowId}`);
  }
  try {
    return await fn();
  } finally {
    await CancellationScope.nonCancellable(async () => {
      try {
        await lock.signal(releaseTargetLockSignal);
        await lock.result();
      } catch (err) {
        // The lock is gone already (terminated by hand): nothing holds the target; fn's outcome stands.
        log.warn('target lock already closed', { lockWorkflowId, error: rootMessage(err) });
      }
    });
  }
}

function busy(target: string, holder: string): ApplicationFailure {
  return failure(
    FailureType.Refused,
    `${target} is already being restored or rolled back by ${holder}: one restore or rollback per database at a time; wait for it to end, or reject or cancel it ("dbops restore reject ${holder} --plan-hash <hash>" or "temporal workflow cancel --workflow-id ${holder}")`,
  );
}
