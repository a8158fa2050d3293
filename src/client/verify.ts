import type { Client, WorkflowHandle } from '@temporalio/client';
import { backupStatus, parseBackupId } from '../../common/backup';
import { FailureType, failure } from '../../common/failures';
import { verifyWorkflowId } from '../../common/ids';
import { assertDatabaseName, InputError } from '../../common/names';
import { LATEST } from '../../common/restore';
import { createBackupStore, listBackupEntries } from '../../activities/storage';
import type { verifyBackupWorkflow } from '../../workflows/verify';
import { DBOPS_BACKUP_ID, DBOPS_DATABASE, DBOPS_OPERATION } from '../../common/search-attributes';
import type { Config } from '../config';
import { startOrJoin } from './start';

/** `latest` → the newest complete backup of `database` (default: the first configured); an id is checked for shape. */
export async function resolveBackupId(
  config: Config,
  selector: string,
  database: string | undefined,
): Promise<string> {
  try {
    if (selector !== LATEST) return parseBackupId(selector).id;
    const db = database ?? config.databases[0]!;
    assertDatabaseName(db, '--database');
    const store = createBackupStore(config.storage);
    try {
      const entries = await listBackupEntries(store, db);
      const newest = [...entries].reverse().find((e) => backupStatus(e) !== 'incomplete');
      if (!newest)
        throw failure(FailureType.NotFound, `no complete backup of ${db} in ${store.describe(`${db}/`)}`);
      return newest.id;
    } finally {
      await store.close();
    }
  } catch (err) {
    if (err instanceof InputError) throw failure(FailureType.InvalidInput, err.message);
    throw err;
  }
}

/** Starts the test restore of `backupId`, or joins the one running: a backup is verified by one run at a time. */
export async function startVerify(
  client: Client,
  config: Config,
  backupId: string,
  /** Test restores to try when one ends without a verdict (server down, scratch full); the workflow's default when unset. */
  rounds?: number,
): Promise<WorkflowHandle<typeof verifyBackupWorkflow>> {
  const { handle } = await startOrJoin(client, 'verifyBackupWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId: verifyWorkflowId(backupId),
    args: [{ backupId, jobs: config.restore.jobs, ...(rounds === undefined ? {} : { rounds }) }],
    staticSummary: `verify backup ${backupId} by a test restore`,
    typedSearchAttributes: [
      { key: DBOPS_OPERATION, value: 'verify' },
      { key: DBOPS_DATABASE, value: parseBackupId(backupId).database },
      { key: DBOPS_BACKUP_ID, value: backupId },
    ],
  });
  return handle;
}
