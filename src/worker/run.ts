import type { Config } from '../config';
import { createWorker } from './create';

/**
 * Runs the worker until SIGINT/SIGTERM. The SDK's runtime installs those handlers: on a signal the
 * worker stops polling, in-flight activities are cancelled and get shutdownGraceTime to clean up.
 */
export async function runWorker(config: Config, log: (line: string) => void = console.error): Promise<void> {
  const { worker, connection } = await createWorker(config);
  log(
    `dbops worker polling task queue "${config.temporal.taskQueue}" on ${config.temporal.address} (namespace ${config.temporal.namespace})`,
  );
  try {
    await worker.run();
    log('dbops worker stopped');
  } finally {
    await connection.close();
  }
}
