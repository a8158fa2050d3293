import type { Client } from '@temporalio/client';
import { milvusMaintenanceWorkflowId } from '../../common/ids';
import type {
  MilvusMaintenanceInput,
  MilvusMaintenanceResult,
  milvusMaintenanceWorkflow,
} from '../../workflows/milvus-maintenance';
import {
  milvusMaintenanceProgressQuery,
  type MilvusMaintenanceProgress,
} from '../../workflows/milvus-messages';
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
