import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ApprovalRecord, ApprovalRequest } from '../common/approvals';
import type { RestoreStatus } from '../common/restore';

/**
 * Approve or reject a waiting restore. The validator answers at once (wrong plan hash, four-eyes,
 * already decided, not waiting); an accepted update returns the recorded decision.
 */
export const restoreApprovalUpdate = defineUpdate<ApprovalRecord, [ApprovalRequest]>('restoreApproval');

/** The same decision as a signal (fire-and-forget: checked by the same rules, ignored with a log when refused). */
export const restoreApprovalSignal = defineSignal<[ApprovalRequest]>('restoreApprovalSignal');

/** Phase, step, plan and approval state of a restore. */
export const restoreStatusQuery = defineQuery<RestoreStatus>('restoreStatus');
