import type { Client, WorkflowHandle } from '@temporalio/client';
import type { BaseBackupKind } from '../../common/basebackup';
import { baseBackupWorkflowId } from '../../common/ids';
import { DBOPS_OPERATION } from '../../common/search-attributes';
import type { baseBackupWorkflow } from '../../workflows/basebackup';
import type { Config } from '../config';
import { startOrJoin } from './start';
import { clusterSystemId } from './wal';

/**
 * Starts (or joins) the manual base backup of `kind` for the current minute: two starts in the same
 * minute make one base backup; a failed run of that minute may be started again.
 */
export async function startBaseBackup(
  client: Client,
  config: Config,
  options: { kind: BaseBackupKind; now?: Date },
): Promise<WorkflowHandle<typeof baseBackupWorkflow>> {
  const { handle } = await startOrJoin(client, 'baseBackupWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId: baseBackupWorkflowId(options.kind, options.now ?? new Date(), await clusterSystemId(config)),
    args: [{ kind: options.kind, trigger: 'manual' }],
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
    staticSummary: `${options.kind} base backup, manual`,
    typedSearchAttributes: [{ key: DBOPS_OPERATION, value: 'basebackup' }],
  });
  return handle;
}
