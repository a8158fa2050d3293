import type { Client } from '@temporalio/client';
import { FailureType, failure } from '../../common/failures';
import { restoreRollbackWorkflowId } from '../../common/ids';
import type { RollbackResult } from '../../common/restore';
import type { restoreRollbackWorkflow } from '../../workflows/restore-rollback';
import { DBOPS_DATABASE, DBOPS_OPERATION } from '../../common/search-attributes';
import type { Config } from '../config';
import { restoreHandle } from './restore';
import { signIfKey } from './signing';

/**
 * Swaps the database a restore kept back in and waits for it, signed with the operator's SSH key
 * when one is found (a worker that requires signatures refuses an unsigned rollback). Refused when
 * the restore did not replace a database (it failed, was rejected, or created a new one).
 */
export async function rollbackRestore(
  client: Client,
  config: Config,
  restoreWorkflowId: string,
  options: { requestedBy: string; key?: string; keepDays?: number; now?: Date },
): Promise<RollbackResult> {
  const r = await restoreHandle(client, restoreWorkflowId).result();
  if (r.outcome !== 'restored' || !r.preRestoreDatabase) {
    throw failure(
      FailureType.Refused,
      `restore ${restoreWorkflowId} ${r.outcome === 'restored' ? 'created a new database (nothing was replaced)' : `did not restore (${r.outcome})`}: nothing to roll back`,
    );
  }
  const workflowId = restoreRollbackWorkflowId(restoreWorkflowId);
  const signed = await signIfKey(
    {
      kind: 'rollback',
      workflowId,
      restoreWorkflowId,
      target: r.target,
      preRestoreDatabase: r.preRestoreDatabase,
      signedAt: (options.now ?? new Date()).toISOString(),
    },
    options.key ?? config.restore.signingKey,
  );
  return client.workflow.execute<typeof restoreRollbackWorkflow>('restoreRollbackWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId,
    args: [
      {
        target: r.target,
        preRestoreDatabase: r.preRestoreDatabase,
        restoreWorkflowId,
        requestedBy: options.requestedBy,
        ...(options.keepDays !== undefined && { keepDays: options.keepDays }),
        ...(signed && { signed }),
      },
    ],
    staticSummary: `roll ${r.target} back to ${r.preRestoreDatabase} (undo ${restoreWorkflowId}), requested by ${options.requestedBy}`,
    typedSearchAttributes: [
      { key: DBOPS_OPERATION, value: 'restore-rollback' },
      { key: DBOPS_DATABASE, value: r.target },
    ],
  });
}
