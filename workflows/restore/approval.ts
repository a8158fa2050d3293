import { condition, log, setHandler } from '@temporalio/workflow';
import { type ApprovalRecord, type ApprovalRequest, approvalProblem } from '../../common/restore';
import { restoreApprovalSignal, restoreApprovalUpdate } from '../restore-messages';
import type { RestoreInput, RestoreRun } from './run';

/**
 * Approval decisions, by Update (answered at once: the validator refuses a wrong plan hash, the
 * requester under four-eyes, a second decision, or one while not waiting) or by Signal (refusals
 * only logged). Registered when the run starts, so no early decision is lost.
 */
export class ApprovalGate {
  decision: ApprovalRecord | undefined;
  private awaiting = false;

  constructor(
    private readonly input: RestoreInput,
    private readonly planHash: () => string | undefined,
  ) {
    setHandler(restoreApprovalUpdate, (req) => this.accept(req, 'update'), {
      validator: (req: ApprovalRequest) => {
        const p = this.problem(req);
        if (p) throw new Error(p);
      },
    });
    setHandler(restoreApprovalSignal, (req) => {
      const p = this.problem(req);
      if (p) log.warn('restore approval signal refused', { by: req?.by, problem: p });
      else this.accept(req, 'signal');
    });
  }

  /** The decision, or undefined when none came within `timeoutMs`. */
  async wait(timeoutMs: number): Promise<ApprovalRecord | undefined> {
    this.awaiting = true;
    const decided = await condition(() => this.decision !== undefined, timeoutMs);
    this.awaiting = false;
    return decided ? this.decision : undefined;
  }

  private problem(req: ApprovalRequest): string | undefined {
    return approvalProblem(req, {
      requestedBy: this.input.requestedBy,
      fourEyes: this.input.fourEyes,
      planHash: this.planHash(),
      decided: this.decision,
      awaiting: this.awaiting,
    });
  }

  private accept(req: ApprovalRequest, via: ApprovalRecord['via']): ApprovalRecord {
    this.decision = {
      decision: req.decision,
      by: req.by.trim(),
      comment: req.comment,
      planHash: req.planHash,
      at: new Date(Date.now()).toISOString(),
      via,
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
  const timeoutMs = run.input.approvalTimeoutMs;
  const waitingSince = new Date(Date.now());
  run.phase('awaiting-approval', {
    waitingSince: waitingSince.toISOString(),
    approvalDeadline: new Date(waitingSince.getTime() + timeoutMs).toISOString(),
  });
  const decision = await approvals.wait(timeoutMs);
  if (decision) run.status = { ...run.status, approval: decision };
  return decision;
}
