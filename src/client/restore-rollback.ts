import type { Client } from '@temporalio/client';
import { FailureType, failure } from '../../common/failures';
import { restoreRollbackWorkflowId } from '../../common/ids';
import type { RollbackResult } from '../../common/restore';
import type { restoreRollbackWorkflow } from '../../workflows/restore-rollback';
import { DBOPS_DATABASE, DBOPS_OPERATION } from '../../common/search-attributes';
import type { Config } from '../config';
import { restoreHandle } from './restore';

/**
 * Swaps the database a restore kept back in and waits for it. Refused when the restore did not
 * replace a database (it failed, was rejected, or created a new one).
 */
export async function rollbackRestore(
  client: Client,
  config: Config,
  restoreWorkflowId: string,
): Promise<RollbackResult> {
  const r = await restoreHandle(client, restoreWorkflowId).result();
  if (r.outcome !== 'restored' || !r.preRestoreDatabase) {
    throw failure(
      FailureType.Refused,
      `restore ${restoreWorkflowId} ${r.outcome === 'restored' ? 'created a new database (nothing was replaced)' : `did not restore (${r.outcome})`}: nothing to roll back`,
    );
  }
  return client.workflow.execute<typeof restoreRollbackWorkflow>('restoreRollbackWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId: restoreRollbackWorkflowId(restoreWorkflowId),
    args: [
      {
        target: r.target,
        preRestoreDatabase: r.preRestoreDatabase,
        restoreWorkflowId,
        keepDays: config.restore.keepDays,
      },
    ],
    typedSearchAttributes: [
      { key: DBOPS_OPERATION, value: 'restore-rollback' },
      { key: DBOPS_DATABASE, value: r.target },
    ],
  });
}
