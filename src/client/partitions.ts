import type { Client } from '@temporalio/client';
import { partitionMaintenanceWorkflowId } from '../../common/ids';
import type {
  PartitionMaintenanceInput,
  PartitionMaintenanceResult,
  partitionMaintenanceWorkflow,
} from '../../workflows/partition-maintenance';
import type { Config } from '../config';
import { startOrJoin } from './start';

/** The workflow's input for `database` from the config; the schedules and `dbops partitions maintain` share it. */
export function maintenanceInput(config: Config, database: string): PartitionMaintenanceInput {
  return {
    database,
    premakeMonths: config.partitions.premakeMonths,
    retentionMonths: config.partitions.retentionMonths,
    retentionMode: config.partitions.retentionMode,
    uiUrl: config.temporal.uiUrl,
  };
}

/** Starts today's maintenance of `database`; a second start the same UTC day attaches to the first run. */
export async function startPartitionMaintenance(
  client: Client,
  config: Config,
  input: PartitionMaintenanceInput,
  now = new Date(),
): Promise<{ workflowId: string; runId: string | undefined; alreadyStarted: boolean }> {
  const workflowId = partitionMaintenanceWorkflowId(input.database, now);
  const { runId, started } = await startOrJoin(client, 'partitionMaintenanceWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId,
    args: [input],
  });
  return { workflowId, runId, alreadyStarted: !started };
}

/** The result of the run `startPartitionMaintenance` started or attached to. */
export function partitionMaintenanceResult(
  client: Client,
  run: { workflowId: string; runId: string | undefined },
): Promise<PartitionMaintenanceResult> {
  return client.workflow.getHandle<typeof partitionMaintenanceWorkflow>(run.workflowId, run.runId).result();
}
