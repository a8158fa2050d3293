import { CancellationScope, log, workflowInfo } from '@temporalio/workflow';
import type { StorageActivities } from '../activities/storage';
import { rootMessage } from '../common/failures';
import { activitiesWith } from './activity-profiles';

/**
 * Past its holder's own deadline, how long a hold still counts: it covers the work after an
 * approval (restore, verify, cut-over: streaming activities of up to 6 hours each, retried) and
 * only matters when the holder was terminated and could not release it.
 */
export const HOLD_MARGIN_MS = 24 * 3_600_000;

/**
 * Runs `fn` with `backupId` held against retention (activities/storage/holds.ts): taken before,
 * released after, whatever the outcome, even while the workflow is being cancelled. A hold that is
 * never released (the workflow terminated) ends `ttlMs` + HOLD_MARGIN_MS after it was taken.
 */
export async function withBackupHold<T>(
  hold: { backupId: string; reason: string; ttlMs: number; retry?: { maximumAttempts: number } },
  fn: () => Promise<T>,
): Promise<T> {
  const { workflowId } = workflowInfo();
  const store = (summary: string) =>
    activitiesWith<StorageActivities>('short', { summary, ...(hold.retry ? { retry: hold.retry } : {}) });
  await store(`hold ${hold.backupId} against retention`).holdBackup({
    backupId: hold.backupId,
    holder: workflowId,
    reason: hold.reason,
    expiresAt: new Date(Date.now() + hold.ttlMs + HOLD_MARGIN_MS).toISOString(),
  });
  try {
    return await fn();
  } finally {
    await CancellationScope.nonCancellable(async () => {
      try {
        await store(`release the hold on ${hold.backupId}`).releaseBackupHold({
          backupId: hold.backupId,
          holder: workflowId,
        });
      } catch (err) {
        log.warn('could not release the hold on the backup; it expires on its own', {
          backupId: hold.backupId,
          error: rootMessage(err),
        });
      }
    });
  }
}
