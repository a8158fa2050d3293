/**
 * What the Temporal Web UI shows on a restore's page while it runs (the workflow's current details,
 * under "User Metadata"): the phase, who asked, the policy, the plan and its hash, the deadline, and
 * the exact commands to decide. Workflow-safe; Markdown, as the Web UI renders it.
 */
import { signedBy } from './approvals';
import type { RestoreStatus } from './restore';

const bytes = (n: number | null) =>
  n === null
    ? 'unknown size'
    : n >= 2 ** 30
      ? `${(n / 2 ** 30).toFixed(1)} GiB`
      : `${(n / 2 ** 20).toFixed(1)} MiB`;

export function restoreDetails(status: RestoreStatus, workflowId: string): string {
  const lines = [`**Restore — ${status.phase}** (step ${status.step} of ${status.steps})`, ''];
  // Unsigned requests keep the typed name alone (the policy line says signatures are off).
  const requester = status.requester
    ? signedBy({ by: status.requestedBy, signer: status.requester })
    : status.requestedBy;
  lines.push(`Requested by ${requester}`);
  if (status.policy) {
    const p = status.policy;
    lines.push(
      `Policy (worker's): signatures ${p.signaturesRequired ? 'required' : 'NOT required'}, four-eyes ${p.fourEyes ? 'on' : 'off'}, replaced database kept ${p.keepDays} days, approval wait ${Math.round(p.approvalTimeoutMs / 60_000)} min`,
    );
  }
  const plan = status.plan;
  if (plan) {
    lines.push(
      '',
      `Backup \`${plan.backupId}\` (${plan.format}, ${bytes(plan.sizeBytes)}, ${plan.tables} tables, ${plan.rows} rows, verification: ${plan.verified}) → **${plan.target}**${plan.targetExists ? ` (exists, ${bytes(plan.targetSizeBytes)})` : ' (new)'}`,
      `Plan hash: \`${status.planHash}\``,
      '',
      ...plan.steps.map((s, i) => `${i + 1}. ${s}`),
    );
  }
  if (status.phase === 'awaiting-approval' && status.planHash) {
    lines.push(
      '',
      `Waiting since ${status.waitingSince}; cancelled unless decided by **${status.approvalDeadline}**.`,
      '',
      `Approve: \`dbops restore approve ${workflowId} --plan-hash ${status.planHash}\``,
      '',
      `Reject: \`dbops restore reject ${workflowId} --plan-hash ${status.planHash} --comment "why"\``,
    );
  }
  if (status.approval) {
    const a = status.approval;
    lines.push(
      '',
      `${a.decision === 'approve' ? 'Approved' : 'Rejected'} by ${signedBy(a)} at ${a.at}${a.comment ? `: ${a.comment}` : ''}`,
    );
  }
  if (status.error) lines.push('', `Error: ${status.error}`);
  return lines.join('\n');
}
