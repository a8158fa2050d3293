import { Client, Connection } from '@temporalio/client';
import type { Worker, WorkerOptions } from '@temporalio/worker';
import type { Config } from '../../src/config';
import { dataConverter } from '../../src/codec/data-converter';
import { createWorker, runWorkers } from '../../src/worker/create';
import { temporalConnectionOptions } from '../../activities/temporal-connection';

export interface TestWorker {
  worker: Worker;
  client: Client;
  config: Config;
  /** Stops the worker (drains) and closes connections. */
  stop(): Promise<void>;
}

/**
 * Starts a real worker on the config's task queue against the dev stack's Temporal server.
 * Give every test file its own DBOPS_TASK_QUEUE so files never steal each other's tasks.
 */
export async function startTestWorker(
  config: Config,
  overrides: Partial<WorkerOptions> = {},
): Promise<TestWorker> {
  const { worker, dumpWorker, connection } = await createWorker(config, {
    shutdownGraceTime: '5s',
    ...overrides,
  });
  const running = runWorkers({ worker, dumpWorker });
  const clientConnection = await Connection.connect(temporalConnectionOptions(config.temporal));
  const client = new Client({
    connection: clientConnection,
    namespace: config.temporal.namespace,
    dataConverter: dataConverter(config),
  });
  return {
    worker,
    client,
    config,
    async stop() {
      for (const w of [worker, dumpWorker]) if (w.getState() === 'RUNNING') w.shutdown();
      await running;
      await connection.close();
      await clientConnection.close();
    },
  };
}
