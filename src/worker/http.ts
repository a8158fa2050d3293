import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { registry } from './metrics';

/**
 * The worker's HTTP endpoints for Kubernetes and Prometheus:
 *   GET /healthz  liveness: the process answers and its event loop is not stuck
 *   GET /readyz   readiness: the worker is RUNNING and the Temporal server answers (cached briefly)
 *   GET /metrics  Prometheus text: Temporal SDK metrics (from the core's loopback exporter) + dbops metrics
 */

export interface ReadinessResult {
  ready: boolean;
  reason: string;
}
export type ReadinessCheck = () => Promise<ReadinessResult>;

export interface HttpServerOptions {
  port: number;
  /** Default 0.0.0.0 so the kubelet and Prometheus reach it. */
  host?: string;
  readiness: ReadinessCheck;
  /** The Temporal core's Prometheus exporter, merged into /metrics. */
  coreMetricsUrl?: string;
  /** Liveness fails when the event loop's worst delay since the last probe exceeds this. */
  maxEventLoopDelayMs?: number;
}

export interface WorkerHttpServer {
  port: number;
  close(): Promise<void>;
}

const CORE_METRICS_TIMEOUT_MS = 3_000;

/** Readiness: every worker RUNNING and a cheap GetSystemInfo within `timeoutMs`, cached `cacheMs`. */
export function workerReadiness(
  workers: readonly Pick<Worker, 'getState'>[],
  connection: Pick<NativeConnection, 'withDeadline' | 'workflowService'>,
  { timeoutMs = 2_000, cacheMs = 5_000 } = {},
): ReadinessCheck {
  let cached: { at: number; result: ReadinessResult } | undefined;
  let inFlight: Promise<ReadinessResult> | undefined;
  const probe = async (): Promise<ReadinessResult> => {
    try {
      await connection.withDeadline(Date.now() + timeoutMs, () =>
        connection.workflowService.getSystemInfo({}),
      );
      return { ready: true, reason: 'worker RUNNING, Temporal server answers' };
    } catch (err) {
      return { ready: false, reason: `Temporal server did not answer GetSystemInfo: ${errorText(err)}` };
    }
  };
  return async () => {
    const states = workers.map((w) => w.getState());
    if (states.some((s) => s !== 'RUNNING'))
      return { ready: false, reason: `worker states: ${states.join(', ')}` };
    if (cached && Date.now() - cached.at < cacheMs) return cached.result;
    inFlight ??= probe().then((result) => {
      cached = { at: Date.now(), result };
      inFlight = undefined;
      return result;
    });
    return inFlight;
  };
}

export async function startHttpServer(options: HttpServerOptions): Promise<WorkerHttpServer> {
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  const maxDelayMs = options.maxEventLoopDelayMs ?? 10_000;

  const handlers: Record<string, () => Promise<{ status: number; type: string; body: string }>> = {
    '/healthz': async () => {
      const worstMs = loopDelay.max / 1e6;
      loopDelay.reset();
      const ok = worstMs <= maxDelayMs;
      return json(ok ? 200 : 503, {
        status: ok ? 'ok' : 'event loop stalled',
        eventLoopMaxDelayMs: Math.round(worstMs),
        uptimeSeconds: Math.round(process.uptime()),
      });
    },
    '/readyz': async () => {
      const r = await options.readiness();
      return json(r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', reason: r.reason });
    },
    '/metrics': async () => {
      const [core, own] = await Promise.all([coreMetrics(options.coreMetricsUrl), registry.metrics()]);
      return { status: 200, type: registry.contentType, body: core + own };
    },
  };

  const server = http.createServer((req, res) => {
    const handler =
      req.method === 'GET' || req.method === 'HEAD' ? handlers[(req.url ?? '/').split('?')[0]!] : undefined;
    const result = handler
      ? handler()
      : Promise.resolve(
          json(404, { error: `no such endpoint: ${req.method} ${req.url}; try /healthz, /readyz, /metrics` }),
        );
    void result
      .catch((err: unknown) => json(500, { error: errorText(err) }))
      .then(({ status, type, body }) => {
        res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      });
  });
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new Error(`cannot listen on DBOPS_HTTP_PORT=${options.port}: ${errorText(err)}; pick a free port`),
      ),
    );
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        loopDelay.disable();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The core exporter's text, or a comment saying why it is missing (the dbops part still answers). */
async function coreMetrics(url: string | undefined): Promise<string> {
  if (!url) return '';
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(CORE_METRICS_TIMEOUT_MS) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const text = await res.text();
    return text.endsWith('\n') || text === '' ? text : `${text}\n`;
  } catch (err) {
    return `# Temporal SDK metrics unavailable (${url}): ${errorText(err).replace(/\n/g, ' ')}\n`;
  }
}

function json(status: number, value: unknown) {
  return { status, type: 'application/json', body: `${JSON.stringify(value)}\n` };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
