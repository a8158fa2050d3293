import { Client, Connection } from '@temporalio/client';
import { workflowRunUrl } from '../../common/links';
import type { Config } from '../config';

/** The one place that builds the Temporal connection and client for the CLI, tests and benchmarks. */
export async function connectClient(config: Config): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({
    address: config.temporal.address,
    tls: config.temporal.tls ? {} : undefined,
    apiKey: config.temporal.apiKey,
    connectTimeout: '5s',
  });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  return { client, connection };
}

/** Runs `fn` with a client and always closes the connection. */
export async function withClient<T>(config: Config, fn: (client: Client) => Promise<T>): Promise<T> {
  const { client, connection } = await connectClient(config);
  try {
    return await fn(client);
  } finally {
    await connection.close();
  }
}

/** Link to a workflow run in the Temporal Web UI. */
export function workflowUrl(config: Config, workflowId: string, runId?: string): string {
  return workflowRunUrl(config.temporal.uiUrl, config.temporal.namespace, workflowId, runId);
}
