import net from 'node:net';
import { Runtime, type LogLevel } from '@temporalio/worker';
import type { Config } from '../config';
import { createWorkerLogger, setProcessLogger, type LogStream, type WorkerLogger } from './logging';

export interface WorkerRuntime {
  /** The process's logger, also the Runtime's: workflow, activity and SDK lines go through it. */
  log: WorkerLogger;
  /** The Temporal core's Prometheus exporter (merged into /metrics), when DBOPS_HTTP_PORT is set. */
  coreMetricsUrl: string | undefined;
}

/**
 * Installs the process's one Temporal Runtime: its logger is the worker's (./logging.ts) and, with
 * DBOPS_HTTP_PORT set, its Prometheus exporter listens on a private loopback port whose URL the
 * worker's /metrics merges, so Prometheus scrapes one endpoint. Must run before the first Temporal
 * connection of the process is made (Runtime.install throws after that, and when called twice).
 * The core's own lines are forwarded to the same logger, at WARN (ERROR when DBOPS_LOG_LEVEL=error):
 * below that the core logs every poll.
 */
export async function installWorkerRuntime(
  config: Config,
  options: { colour?: boolean; stream?: LogStream } = {},
): Promise<WorkerRuntime> {
  const log = createWorkerLogger(config, options);
  const bindAddress = config.httpPort === undefined ? undefined : `127.0.0.1:${await freeLoopbackPort()}`;
  const coreLevel: LogLevel = config.log.level === 'error' ? 'ERROR' : 'WARN';
  Runtime.install({
    logger: log,
    telemetryOptions: {
      logging: { filter: { core: coreLevel, other: 'ERROR' }, forward: {} },
      ...(bindAddress !== undefined && { metrics: { prometheus: { bindAddress } } }),
    },
  });
  setProcessLogger(log);
  return { log, coreMetricsUrl: bindAddress && `http://${bindAddress}/metrics` };
}

/** A free TCP port on 127.0.0.1 for the Temporal core's own Prometheus exporter. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
