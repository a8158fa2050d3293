import type { Config } from '../config';
import { createWorker, runWorkers, type CreatedWorker } from './create';
import { startHttpServer, workerReadiness, type ReadinessCheck, type WorkerHttpServer } from './http';
import { storeBackupAgeSource } from './backup-age';
import { installTemporalTelemetry, registerBackupAgeSource } from './metrics';

/**
 * Runs the worker until SIGINT/SIGTERM. The SDK's runtime installs those handlers: on a signal the
 * worker stops polling, in-flight activities are cancelled and get shutdownGraceTime to clean up,
 * then this resolves and the process exits 0. With DBOPS_HTTP_PORT set it also serves /healthz,
 * /readyz and /metrics (see ./http.ts); the server starts first so liveness answers during startup.
 */
export async function runWorker(config: Config, log: (line: string) => void = console.error): Promise<void> {
  let created: CreatedWorker | undefined;
  let http: WorkerHttpServer | undefined;
  if (config.httpPort !== undefined) {
    const coreMetricsUrl = await installTemporalTelemetry();
    registerBackupAgeSource(storeBackupAgeSource(config));
    const ready: { check?: ReadinessCheck } = {};
    http = await startHttpServer({
      port: config.httpPort,
      coreMetricsUrl,
      readiness: () => ready.check?.() ?? Promise.resolve({ ready: false, reason: 'worker starting' }),
    });
    log(`dbops worker HTTP on :${http.port} (/healthz, /readyz, /metrics)`);
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
  log(
    `dbops worker polling task queue "${config.temporal.taskQueue}" on ${config.temporal.address} (namespace ${config.temporal.namespace})`,
  );
  try {
    await runWorkers(created);
    log('dbops worker stopped');
  } finally {
    await http?.close();
    await connection.close();
  }
}
