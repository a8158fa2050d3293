import { Client, Connection } from '@temporalio/client';
import { workflowRunUrl } from '../../common/links';
import { explainTemporalConnectError, temporalConnectionOptions } from '../../activities/temporal-connection';
import type { Config } from '../config';
import { dataConverter } from '../codec/data-converter';

/** The one place that builds the Temporal connection and client for the CLI, tests and benchmarks. */
export async function connectClient(config: Config): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({
    ...temporalConnectionOptions(config.temporal),
    connectTimeout: '5s',
  }).catch((err: unknown) => {
    throw explainTemporalConnectError(err, config.temporal);
  });
  const client = new Client({
    connection,
    namespace: config.temporal.namespace,
    dataConverter: dataConverter(config),
  });
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
