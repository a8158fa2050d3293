import { condition, log, setHandler } from '@temporalio/workflow';
import type { ApprovalActivities } from '../../activities/approvals';
import {
  type ApprovalRecord,
  type ApprovalRequest,
  type ApprovalRules,
  approvalProblem,
  type Signer,
  signedDecisionProblem,
} from '../../common/approvals';
import { FailureType, failure, rootMessage } from '../../common/failures';
import { activitiesWith } from '../activity-profiles';
import { restoreApprovalSignal, restoreApprovalUpdate } from '../restore-messages';
import type { RestoreRun } from './run';

/**
 * Approval decisions, by Update (answered at once) or by Signal (refusals only logged). The
 * validator refuses what needs no proof (a wrong plan hash, a second decision, one while not
 * waiting, an unsigned decision where signatures are required); the handler then proves a signed
 * decision on the worker (ssh-keygen -Y verify against DBOPS_APPROVERS_FILE) and checks what was
 * signed: this run, this plan, this decision, fresh, and not by the requester under four-eyes.
 * Registered when the run starts, so no early decision is lost.
 */
export class ApprovalGate {
  decision: ApprovalRecord | undefined;
  private awaiting = false;

  constructor(private readonly run: RestoreRun) {
    setHandler(restoreApprovalUpdate, (req) => this.decide(req, 'update'), {
      validator: (req: ApprovalRequest) => {
        const p = this.problem(req);
        if (p) throw new Error(p);
      },
    });
    setHandler(restoreApprovalSignal, async (req) => {
      try {
        const p = this.problem(req);
        if (p) throw new Error(p);
        await this.decide(req, 'signal');
      } catch (err) {
        log.warn('restore approval signal refused', { by: req?.by, problem: rootMessage(err) });
      }
    });
  }

  /** The decision, or undefined when none came within `timeoutMs`. */
  async wait(timeoutMs: number): Promise<ApprovalRecord | undefined> {
    this.awaiting = true;
    const decided = await condition(() => this.decision !== undefined, timeoutMs);
    this.awaiting = false;
    return decided ? this.decision : undefined;
  }

  private rules(): ApprovalRules {
    const { status, info } = this.run;
    // Before the policy is read nothing is waiting (refused as such): assume the strictest meanwhile.
    return {
      workflowId: info.workflowId,
      requestedBy: status.requestedBy,
      fourEyes: status.policy?.fourEyes ?? true,
      signaturesRequired: status.policy?.signaturesRequired ?? true,
      planHash: status.planHash ?? undefined,
      decided: this.decision,
      awaiting: this.awaiting,
    };
  }

  private problem(req: ApprovalRequest): string | undefined {
    return approvalProblem(req, this.rules());
  }

  /** Proves the signer (when required), checks again (another decision may have landed meanwhile), records. */
  private async decide(req: ApprovalRequest, via: ApprovalRecord['via']): Promise<ApprovalRecord> {
    let signer: Signer | null = null;
    if (this.rules().signaturesRequired && req.signed) {
      const signed = req.signed;
      const { verifySignedStatement } = activitiesWith<ApprovalActivities>('short', {
        summary: `check the signature on a ${req.decision}`,
      });
      try {
        signer = await verifySignedStatement({ signed });
      } catch (err) {
        throw failure(FailureType.Refused, rootMessage(err));
      }
      const p =
        this.problem(req) ?? signedDecisionProblem({ ...req, signed }, signer, this.rules(), Date.now());
      if (p) throw failure(FailureType.Refused, p);
    } else {
      const p = this.problem(req);
      if (p) throw failure(FailureType.Refused, p);
    }
    this.decision = {
      decision: req.decision,
      by: signer ? signer.principal : req.by.trim(),
      ...(req.comment !== undefined ? { comment: req.comment } : {}),
      planHash: req.planHash,
      at: new Date(Date.now()).toISOString(),
      via,
      signer,
    };
    log.info('restore approval decided', { ...this.decision });
    return this.decision;
  }
}

/** 2. Approval: the decision on this plan, or undefined when the approval timed out. */
export async function awaitApproval(
  run: RestoreRun,
  approvals: ApprovalGate,
): Promise<ApprovalRecord | undefined> {
  const timeoutMs = run.policy.approvalTimeoutMs;
  const waitingSince = new Date(Date.now());
  run.phase('awaiting-approval', {
    waitingSince: waitingSince.toISOString(),
    approvalDeadline: new Date(waitingSince.getTime() + timeoutMs).toISOString(),
  });
  const decision = await approvals.wait(timeoutMs);
  if (decision) run.status = { ...run.status, approval: decision };
  return decision;
}
