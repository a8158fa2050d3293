import type { ApprovalRecord, RestoreResult, RestoreStatus } from '../../../../common/restore';
import { humanBytes, humanDuration, plural } from '../../output';

/** `approved by alice`, `rejected by bob`: the decision in the past tense. */
export function decidedText(approval: Pick<ApprovalRecord, 'decision' | 'by' | 'at'>): string {
  return `${approval.decision === 'approve' ? 'approved' : 'rejected'} by ${approval.by} at ${approval.at}`;
}

export function printPlan(s: RestoreStatus, workflowId: string, link: string): void {
  const p = s.plan!;
  process.stdout.write(
    [
      `Restore ${p.target} from ${p.backupId} (${humanBytes(p.sizeBytes)}, ${p.format}/${p.compression}, schema ${p.schemaVersion ?? 'none'}, verification: ${p.verified})`,
      `  ${plural(p.tables, 'table')}, ${plural(p.rows, 'row')}, extensions [${p.extensions.join(', ')}]; estimated ${humanDuration(p.estimatedSeconds * 1000)}`,
      ...p.steps.map((step, i) => `  ${i + 1}. ${step}`),
      `Plan hash: ${s.planHash}`,
      s.approvalDeadline
        ? `Waiting for approval until ${s.approvalDeadline} (requested by ${s.requestedBy})`
        : '',
      s.approvalDeadline
        ? `Approve: dbops restore approve ${workflowId} --as NAME --plan-hash ${s.planHash}`
        : '',
      `Web UI: ${link}`,
    ]
      .filter(Boolean)
      .join('\n') + '\n',
  );
}

export function printResult(r: RestoreResult): void {
  const lines = [`${r.outcome}: ${r.target} from ${r.plan.backupId} in ${humanDuration(r.durationMs)}`];
  if (r.approval)
    lines.push(`${decidedText(r.approval)}${r.approval.comment ? ` (${r.approval.comment})` : ''}`);
  // How the outcome was established when the run did not end normally (a cancel after the swap committed).
  if (r.note) lines.push(r.note);
  if (r.cutoverMs !== null) lines.push(`cut-over window: ${r.cutoverMs} ms`);
  if (r.preRestoreDatabase)
    lines.push(
      `previous database kept as ${r.preRestoreDatabase} (${plural(r.plan.keepDays, 'day')}); undo with: dbops restore rollback <workflow-id>`,
    );
  if (r.link) lines.push(`Web UI: ${r.link}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
