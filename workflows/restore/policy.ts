import type { ApprovalActivities } from '../../activities/approvals';
import { effectivePolicy, statementProblem } from '../../common/approvals';
import { FailureType, failure } from '../../common/failures';
import { activitiesWith } from '../activity-profiles';
import type { RestoreRun } from './run';

/**
 * 0. Policy: the worker's restore policy (a workflow cannot read worker settings, and the requester
 * must not choose them), applied to what the request asked; where signatures are required, the
 * request's signature is proven and its signer becomes the requester four-eyes compares with.
 */
export async function applyPolicy(run: RestoreRun): Promise<void> {
  const { input } = run;
  const policy = await activitiesWith<ApprovalActivities>('short', {
    summary: "read the worker's restore policy",
  }).restorePolicy();
  run.setPolicy(policy, effectivePolicy(policy, input));
  // A dry run changes nothing and decides nothing: anyone who may start workflows may see a plan.
  if (!policy.signaturesRequired || input.dryRun) return;
  if (!input.request) {
    throw failure(
      FailureType.Refused,
      `unsigned restore request: this worker requires signed requests and decisions (DBOPS_APPROVERS_FILE); start it with "dbops restore ${input.backup}${input.target ? ` --target ${input.target}` : ''} --key <your SSH key>" (or with your key in ssh-agent)`,
    );
  }
  const request = input.request;
  const signer = await activitiesWith<ApprovalActivities>('short', {
    summary: 'check the signature on the restore request',
  }).verifySignedStatement({ signed: request });
  const problem = statementProblem(
    request.statement,
    {
      kind: 'restore-request',
      workflowId: run.info.workflowId,
      backup: input.backup,
      target: input.target ?? '(not named)',
    },
    Date.now(),
  );
  if (problem) throw failure(FailureType.Refused, `restore request refused: ${problem}`);
  run.status = { ...run.status, requestedBy: signer.principal, requester: signer };
}
