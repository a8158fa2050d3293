import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { temporalConnectionOptions, type TemporalSettings } from '../temporal-connection';

export type { TemporalSettings } from '../temporal-connection';

/**
 * Who holds a target lock: the parent of the running lock workflow (workflows/target-lock.ts).
 * A workflow cannot describe another one; this activity asks the server.
 */
export async function lockHolder(temporal: TemporalSettings, lockWorkflowId: string): Promise<string | null> {
  const connection = await Connection.connect({
    ...temporalConnectionOptions(temporal),
    connectTimeout: '5s',
  });
  try {
    const client = new Client({ connection, namespace: temporal.namespace });
    const desc = await client.workflow.getHandle(lockWorkflowId).describe();
    if (desc.status.name !== 'RUNNING') return null;
    return desc.parentExecution?.workflowId ?? null;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  } finally {
    await connection.close();
  }
}
