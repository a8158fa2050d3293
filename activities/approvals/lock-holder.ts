import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';

export interface TemporalSettings {
  readonly address: string;
  readonly namespace: string;
  readonly tls: boolean;
  readonly apiKey: string | undefined;
}

/**
 * Who holds a target lock: the parent of the running lock workflow (workflows/target-lock.ts).
 * A workflow cannot describe another one; this activity asks the server.
 */
export async function lockHolder(temporal: TemporalSettings, lockWorkflowId: string): Promise<string | null> {
  const connection = await Connection.connect({
    address: temporal.address,
    tls: temporal.tls ? {} : undefined,
    apiKey: temporal.apiKey,
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
