import type { RestoreResult } from '../../common/restore';
import { ApprovalGate, awaitApproval } from './approval';
import { analyzeUnlessRestored, cutOver, dropShadowOnFailure, restoreShadow, verifyShadow } from './apply';
import { planRestore } from './plan';
import { reportDryRun, reportNotApproved, reportRestored } from './report';
import { type RestoreInput, RestoreRun } from './run';

export type { RestoreWorkflowSettings } from './run';

/**
 * Restore a backup with human approval; the runbook, in order:
 * 1. plan: resolve the backup, check its archive (size, SHA-256, readable), describe the target,
 *    and hash the plan; nothing is changed before the approval;
 * 2. approval: wait for a decision on that plan (Update or Signal), or time out;
 * 3. shadow restore: restore into `<target>__restore_<time>`;
 * 4. verify: compare the shadow with the backup's manifest;
 * 5. cut-over: swap the shadow in for the target in one transaction (the old database is kept);
 *    ANALYZE unless the archive brought planner statistics;
 * 6. report: the result and Slack.
 * Anything failing or cancelled before the cut-over drops the shadow; the target is untouched.
 * One module per phase: plan.ts, approval.ts, apply.ts (3 to 5), report.ts; run.ts holds the
 * run's status, activities and Slack.
 */
export async function restoreWorkflow(input: RestoreInput): Promise<RestoreResult> {
  const run = new RestoreRun(input);
  const approvals = new ApprovalGate(input, () => run.status.planHash ?? undefined);
  const planned = await planRestore(run);
  if (input.dryRun) return reportDryRun(run, planned);
  const approval = await awaitApproval(run, approvals);
  if (approval?.decision !== 'approve') return reportNotApproved(run, planned, approval);
  const restored = await dropShadowOnFailure(run, planned, approval, async () => {
    const { statisticsRestored } = await restoreShadow(run, planned);
    await verifyShadow(run, planned);
    return { statisticsRestored, cutover: await cutOver(run, planned) };
  });
  await analyzeUnlessRestored(run, planned, restored.statisticsRestored);
  return reportRestored(run, planned, approval, restored.cutover);
}
