import type { Config } from '../config';
import { createWorker, runWorkers, SHUTDOWN_GRACE_SECONDS, type CreatedWorker } from './create';
import { startHttpServer, workerReadiness, type ReadinessCheck, type WorkerHttpServer } from './http';
import { storeBackupAgeSource } from './backup-age';
import type { LogStream } from './logging';
import { registerBackupAgeSource } from './metrics';
import { installWorkerRuntime } from './runtime';
import { holdShutdownSignals } from './signals';

/**
 * Runs the worker until SIGINT/SIGTERM. The SDK's runtime installs those handlers: on a signal the
 * worker stops polling, in-flight activities are cancelled and get shutdownGraceTime to clean up,
 * then this resolves and the process exits 0. With DBOPS_HTTP_PORT set it also serves /healthz,
 * /readyz and /metrics (see ./http.ts); the server starts first so liveness answers during startup.
 * Every line goes through the logger ./runtime.ts installs (JSON lines unless stdout is a terminal).
 */
export async function runWorker(
  config: Config,
  options: { colour?: boolean; stream?: LogStream } = {},
): Promise<void> {
  const { log, coreMetricsUrl } = await installWorkerRuntime(config, options);
  let created: CreatedWorker | undefined;
  let http: WorkerHttpServer | undefined;
  if (config.httpPort !== undefined) {
    registerBackupAgeSource(storeBackupAgeSource(config));
    const ready: { check?: ReadinessCheck } = {};
    http = await startHttpServer({
      port: config.httpPort,
      coreMetricsUrl,
      readiness: () => ready.check?.() ?? Promise.resolve({ ready: false, reason: 'worker starting' }),
    });
    log.info(`dbops worker HTTP on :${http.port} (/healthz, /readyz, /metrics)`, { port: http.port });
    try {
      created = await createWorker(config);
    } catch (err) {
      await http.close();
      throw err;
    }
    ready.check = workerReadiness([created.worker, created.dumpWorker], created.connection);
  } else {
    created = await createWorker(config);
  }
  const { connection } = created;
  const { taskQueue, address, namespace } = config.temporal;
  log.info(`dbops worker polling task queue "${taskQueue}" on ${address} (namespace ${namespace})`, {
    taskQueue,
    namespace,
    address,
  });
  const releaseSignals = holdShutdownSignals(log, SHUTDOWN_GRACE_SECONDS);
  try {
    await runWorkers(created);
    log.info('dbops worker stopped');
  } finally {
    releaseSignals();
    await http?.close();
    await connection.close();
  }
}
