import type { RestorePolicy, SignedStatement, Signer } from '../../common/approvals';
import { FailureType, failure } from '../../common/failures';
import { lockHolder, type TemporalSettings } from './lock-holder';
import { verifySignedStatement } from './signatures';

export interface ApprovalDeps {
  readonly restore: {
    readonly approversFile: string | undefined;
    readonly fourEyes: boolean;
    readonly keepDays: number;
    readonly approvalTimeoutMs: number;
  };
  readonly databases: readonly string[];
  readonly temporal: TemporalSettings;
}

/**
 * Restore policy and proof of who decided: the worker's settings (a workflow cannot read them, and
 * the requester must not choose them), the check of a signed statement, and who holds a target.
 */
export function createApprovalActivities(deps: ApprovalDeps) {
  return {
    /** The worker's restore policy (short): signatures, four-eyes, keep days, approval timeout, databases. */
    async restorePolicy(): Promise<RestorePolicy> {
      return {
        signaturesRequired: deps.restore.approversFile !== undefined,
        fourEyes: deps.restore.fourEyes,
        keepDays: deps.restore.keepDays,
        approvalTimeoutMs: deps.restore.approvalTimeoutMs,
        databases: [...deps.databases],
      };
    },

    /** Proves a signed statement against DBOPS_APPROVERS_FILE (short): its signer, or Refused. */
    async verifySignedStatement(input: { signed: SignedStatement }): Promise<Signer> {
      if (deps.restore.approversFile === undefined) {
        throw failure(
          FailureType.Misconfigured,
          'this worker has no DBOPS_APPROVERS_FILE: it cannot check signatures (set it to an allowed-signers file)',
        );
      }
      return verifySignedStatement(deps.restore.approversFile, input.signed);
    },

    /** The workflow id holding the lock workflow `lockWorkflowId` (its parent), or null when it is gone (short). */
    async targetLockHolder(input: { lockWorkflowId: string }): Promise<string | null> {
      return lockHolder(deps.temporal, input.lockWorkflowId);
    },
  };
}

export type ApprovalActivities = ReturnType<typeof createApprovalActivities>;
