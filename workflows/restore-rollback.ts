import { workflowInfo } from '@temporalio/workflow';
import type { RestoreActivities } from '../activities/postgres';
import type { RollbackInput, RollbackResult } from '../common/restore';
import { activitiesWith } from './activity-profiles';

/** Swaps the kept pre-restore database back in for the target; the replaced one is kept in turn. */
export async function restoreRollbackWorkflow(input: RollbackInput): Promise<RollbackResult> {
  const { rollbackRestore } = activitiesWith<RestoreActivities>('cutover', {
    summary: `swap ${input.preRestoreDatabase} back in for ${input.target}`,
  });
  return rollbackRestore({
    ...input,
    workflowId: workflowInfo().workflowId,
    now: new Date(Date.now()).toISOString(),
  });
}
