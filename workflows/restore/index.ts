import { CancellationScope } from '@temporalio/workflow';
import type { RestoreResult } from '../../common/restore';
import { ApprovalGate, awaitApproval } from './approval';
import { analyzeUnlessRestored, applyRestore } from './apply';
import { planRestore, refuseSystemTarget } from './plan';
import { reportDryRun, reportNotApproved, reportRestored } from './report';
import { applyPolicy } from './policy';
import { type Planned, type RestoreInput, RestoreRun } from './run';
import { withBackupHold } from '../backup-hold';
import { withTargetLock } from '../target-lock';

export type { RestoreWorkflowSettings } from './run';

/**
 * Restore a backup with human approval; the runbook, in order:
 * 0. policy: the worker's (signatures, four-eyes, keep days, approval wait), never the requester's;
 *    a signed request is proven and its signer is the requester; the target is locked (one restore
 *    or rollback per database at a time, ../target-lock.ts);
 * 1. plan: resolve the backup, check its archive (size, SHA-256, readable), describe the target,
 *    and hash the plan; nothing is changed before the approval;
 * 2. approval: wait for a decision on that plan (Update or Signal), or time out; the backup is
 *    held against retention from here until the restore ends (../backup-hold.ts);
 * 3. shadow restore: restore into `<target>__restore_<time>`;
 * 4. verify: compare the shadow with the backup's manifest;
 * 5. cut-over: swap the shadow in for the target in one transaction (the old database is kept);
 *    ANALYZE unless the archive brought planner statistics;
 * 6. report: the result and Slack.
 * Anything failing or cancelled before the cut-over commits drops the shadow; the target is
 * untouched. Whether it committed is read from the database (the marks the swap leaves), so a
 * cancel or a crash right after the commit still reports the restore it was.
 * One module per phase: policy.ts, plan.ts, approval.ts, apply.ts (3 to 5), report.ts; run.ts holds the
 * run's status, activities and Slack.
 */
export async function restoreWorkflow(input: RestoreInput): Promise<RestoreResult> {
  const run = new RestoreRun(input);
  const approvals = new ApprovalGate(run);
  // A workflow can be started without the CLI: a system database is refused before any activity.
  refuseSystemTarget(input.target);
  await applyPolicy(run);
  if (input.dryRun) return reportDryRun(run, await planRestore(run));
  // One restore or rollback per target: locked before the archive is read when the target is named.
  if (input.target !== undefined)
    return withTargetLock(input.target, async () => holdAndApply(run, approvals, await planRestore(run)));
  const planned = await planRestore(run);
  return withTargetLock(planned.plan.target, () => holdAndApply(run, approvals, planned));
}

/** Retention keeps the backup from before the approval wait until this restore ends, any outcome. */
function holdAndApply(run: RestoreRun, approvals: ApprovalGate, planned: Planned): Promise<RestoreResult> {
  const hold = {
    backupId: planned.plan.backupId,
    reason: `restore into ${planned.plan.target}`,
    ttlMs: run.policy.approvalTimeoutMs,
    ...(run.input.maximumAttempts ? { retry: { maximumAttempts: run.input.maximumAttempts } } : {}),
  };
  return withBackupHold(hold, () => approveAndApply(run, approvals, planned));
}

async function approveAndApply(
  run: RestoreRun,
  approvals: ApprovalGate,
  planned: Planned,
): Promise<RestoreResult> {
  const approval = await awaitApproval(run, approvals);
  if (approval?.decision !== 'approve') return reportNotApproved(run, planned, approval);
  const applied = await applyRestore(run, planned, approval);
  await analyzeUnlessRestored(run, planned, applied.statisticsRestored);
  // Once the target is swapped, the report goes out even when a cancel arrived meanwhile.
  return CancellationScope.nonCancellable(() => reportRestored(run, planned, approval, applied));
}
