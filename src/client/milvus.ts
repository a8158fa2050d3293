import type { Client, WorkflowHandle } from '@temporalio/client';
import { milvusMaintenanceWorkflowId, milvusRepairWorkflowId } from '../../common/ids';
import { DBOPS_DATABASE, DBOPS_OPERATION } from '../../common/search-attributes';
import type {
  MilvusMaintenanceInput,
  MilvusMaintenanceResult,
  milvusMaintenanceWorkflow,
} from '../../workflows/milvus-maintenance';
import {
  milvusMaintenanceProgressQuery,
  type MilvusMaintenanceProgress,
} from '../../workflows/milvus-messages';
import type { MilvusRepairInput, milvusRepairWorkflow } from '../../workflows/milvus-repair';
import type { Config } from '../config';
import { startOrJoin } from './start';

/** Starts today's maintenance of `collection`; an identical start the same UTC day attaches to it. */
export async function startMilvusMaintenance(
  client: Client,
  config: Config,
  input: MilvusMaintenanceInput,
  now = new Date(),
): Promise<{ workflowId: string; runId: string | undefined; alreadyRan: boolean }> {
  const workflowId = milvusMaintenanceWorkflowId(input.collection, now);
  const { runId, started } = await startOrJoin(client, 'milvusMaintenanceWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId,
    args: [input],
    // A failed run may be retried the same day; a running one is joined; a completed one stands.
    workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
  return { workflowId, runId, alreadyRan: !started };
}

/**
 * Waits for the maintenance run `workflowId`, handing its progress to `onProgress` about once a
 * second (undefined when the query was not answered), and returns its result.
 */
export async function watchMilvusMaintenance(
  client: Client,
  workflowId: string,
  onProgress: (p: MilvusMaintenanceProgress | undefined) => void,
): Promise<MilvusMaintenanceResult> {
  const handle = client.workflow.getHandle<typeof milvusMaintenanceWorkflow>(workflowId);
  const result = handle.result();
  let done = false;
  void result.finally(() => (done = true)).catch(() => undefined);
  while (!done) {
    onProgress(await handle.query(milvusMaintenanceProgressQuery).catch(() => undefined));
    await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
  }
  return result;
}

/**
 * Starts the repair of `input.collection` (`dbops milvus check --fix`); `started` is false when a
 * repair of that collection is already running: the handle is then that run's (one at a time).
 */
export async function startMilvusRepair(
  client: Client,
  config: Config,
  input: MilvusRepairInput,
): Promise<{
  handle: WorkflowHandle<typeof milvusRepairWorkflow>;
  runId: string | undefined;
  started: boolean;
}> {
  const confirmed = input.confirmDelete === undefined ? '' : `, deletion of ${input.confirmDelete} confirmed`;
  return startOrJoin(client, 'milvusRepairWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId: milvusRepairWorkflowId(input.collection),
    args: [input],
    staticSummary: `repair Milvus ${input.collection} from PostgreSQL ${input.database}${confirmed}`,
    typedSearchAttributes: [
      { key: DBOPS_OPERATION, value: 'milvus-repair' },
      { key: DBOPS_DATABASE, value: input.database },
    ],
  });
}
