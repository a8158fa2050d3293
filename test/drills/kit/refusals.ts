/**
 * Verifications and restores started once (no retry, no approver) on an in-process test worker, to
 * be refused: drills 4 and 12 prove each refusal came before any restore activity (and, for a
 * restore, before it waited for approval), from the workflow's history.
 */
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { expect } from 'vitest';
import { parseBackupId } from '../../../common/backup';
import { failureTypeOf, rootMessage } from '../../../common/failures';
import { restoreWorkflowId, verifyWorkflowId } from '../../../common/ids';
import { restoreStatusQuery } from '../../../workflows/restore-messages';
import type { TestWorker } from '../../helpers/worker';
import { fingerprint, populate, takeBackup } from '../../integration/restore-fixtures';

/** Fills `db` with `rows` users and backs it up on `tw`: the backup's id and the data as backed up. */
export async function backUpOnce(
  tw: TestWorker,
  db: string,
  rows: number,
): Promise<{ backupId: string; before: Record<string, string> }> {
  await populate(tw.config, db, rows);
  const before = await fingerprint(tw.config, db);
  const { backupId } = await takeBackup(tw.client, tw.config, db);
  return { backupId, before };
}

/** A verification of `backupId` (one round, one attempt) on `tw`'s task queue; `tag` ends its workflow ID. */
export function startVerifyOnce(tw: TestWorker, backupId: string, tag: string): Promise<WorkflowHandle> {
  return tw.client.workflow.start('verifyBackupWorkflow', {
    taskQueue: tw.config.temporal.taskQueue,
    workflowId: `${verifyWorkflowId(backupId)}-${tag}`,
    args: [{ backupId, maximumAttempts: 1, rounds: 1 }],
  });
}

/** A restore of `backup` into its own database (one attempt, no four eyes); `tag` ends its workflow ID. */
export function startRestoreOnce(tw: TestWorker, backup: string, tag: string): Promise<WorkflowHandle> {
  return tw.client.workflow.start('restoreWorkflow', {
    taskQueue: tw.config.temporal.taskQueue,
    workflowId: `${restoreWorkflowId(parseBackupId(backup).database, new Date())}-${tag}`,
    args: [
      {
        backup,
        requestedBy: 'drill',
        allowUnlistedTarget: true,
        approvalTimeoutMs: 10 * 60_000,
        fourEyes: false,
        keepDays: 1,
        jobs: 2,
        maximumAttempts: 1,
      },
    ],
  });
}

/** Names of the activities a workflow scheduled (its history). */
async function scheduledActivities(handle: WorkflowHandle): Promise<string[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? [])
    .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
    .filter((n): n is string => typeof n === 'string');
}

/**
 * Waits for a workflow of startVerifyOnce or startRestoreOnce to fail and checks the refusal: a
 * workflow failure of `type` whose message matches `says`, no restore activity scheduled, and a
 * restore never waiting for approval. Returns the failure's message; `where` labels the checks.
 */
export async function expectRefused(
  handle: WorkflowHandle,
  type: string,
  says: RegExp,
  where = '',
): Promise<string> {
  const err = await handle.result().catch((e: unknown) => e);
  expect(err, where).toBeInstanceOf(WorkflowFailedError);
  expect(failureTypeOf(err), `${where}: ${rootMessage(err)}`).toBe(type);
  expect(rootMessage(err), where).toMatch(says);
  if ((await handle.describe()).type === 'restoreWorkflow')
    expect((await handle.query(restoreStatusQuery)).waitingSince, where).toBeNull();
  expect(await scheduledActivities(handle), where).not.toContain('restoreBackupInto');
  return rootMessage(err);
}
