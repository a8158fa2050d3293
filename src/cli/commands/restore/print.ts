import { type ApprovalRecord, signedBy } from '../../../../common/approvals';
import type { RestorePlan, RestoreResult, RestoreStatus } from '../../../../common/restore';
import { humanBytes, humanDuration, plural } from '../../output';

/** `approved by alice`, `rejected by bob`: the decision in the past tense. */
export function decidedText(approval: Pick<ApprovalRecord, 'decision' | 'by' | 'at' | 'signer'>): string {
  return `${approval.decision === 'approve' ? 'approved' : 'rejected'} by ${signedBy(approval)} at ${approval.at}`;
}

/** The plan as an approver reviews it, with its hash and the commands to decide. */
export function planText(s: RestoreStatus, workflowId: string, link: string): string {
  const p = s.plan!;
  const policy = s.policy;
  const waiting = s.phase === 'awaiting-approval' && s.approvalDeadline !== null;
  const requester = s.requester
    ? `${s.requestedBy}, signed with ${s.requester.fingerprint}`
    : `${s.requestedBy}, unsigned`;
  return (
    [
      p.pointInTime
        ? `Restore ${p.target} from ${p.backupDatabase} as it was at ${p.pointInTime.recoveryTarget} (schema ${p.schemaVersion ?? 'none'}, shadow verified)`
        : `Restore ${p.target} from ${p.backupId} (${humanBytes(p.sizeBytes)}, ${p.format}/${p.compression}, schema ${p.schemaVersion ?? 'none'}, verification: ${p.verified})`,
      `  ${p.tables < 0 ? 'row counts unknown (an adopted spec backup, counted by this restore)' : `${plural(p.tables, 'table')}, ${plural(p.rows, 'row')}`}, extensions [${p.extensions.join(', ')}]; estimated ${humanDuration(p.estimatedSeconds * 1000)}`,
      ...pointInTimeLines(p),
      ...p.steps.map((step, i) => `  ${i + 1}. ${step}`),
      `Plan hash: ${s.planHash}`,
      policy
        ? `Policy (the worker's): signatures ${policy.signaturesRequired ? 'required' : 'not required'}, four-eyes ${policy.fourEyes ? 'on' : 'off'}, replaced database kept ${plural(policy.keepDays, 'day')}`
        : '',
      waiting ? `Waiting for approval until ${s.approvalDeadline} (requested by ${requester})` : '',
      waiting ? `Approve: dbops restore approve ${workflowId} --plan-hash ${s.planHash}` : '',
      waiting ? `Reject:  dbops restore reject ${workflowId} --plan-hash ${s.planHash} --comment "why"` : '',
      `Web UI: ${link}`,
    ]
      .filter(Boolean)
      .join('\n') + '\n'
  );
}

/** What a point-in-time restore recovered to, and what it changes compared with the live database. */
function pointInTimeLines(p: RestorePlan): string[] {
  const t = p.pointInTime;
  if (!t) return [];
  const diff =
    t.rowDifference === null
      ? `${p.target} does not exist now`
      : `${t.rowDifference >= 0 ? '+' : ''}${t.rowDifference} rows compared with ${p.target} now (${t.liveTargetRows} rows)`;
  return [
    `  Point in time: ${t.recoveryTarget}; recovered to LSN ${t.reachedLsn} from ${t.baseBackups.join(' + ')} and ${plural(t.walSegments, 'WAL segment')}`,
    `  Last transaction replayed: ${t.lastTransactionAt ?? 'none after the base backup'}`,
    `  Recovered ${plural(t.recoveredRows, 'row')}: ${diff}`,
  ];
}

export function printPlan(s: RestoreStatus, workflowId: string, link: string): void {
  process.stdout.write(planText(s, workflowId, link));
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
