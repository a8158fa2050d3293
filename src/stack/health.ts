/** Probes used by the health checks, and a deadline-bound wait. */
import http from 'node:http';
import net from 'node:net';

import { sleep } from './procs';

export const HOST = '127.0.0.1';

/** Does something accept TCP connections on host:port? */
export function tcpOpen(port: number, host = HOST, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export interface HttpAnswer {
  status: number;
  body: string;
}

/** GET a URL; undefined when nothing answers with HTTP in time. */
export function httpGet(url: string, timeoutMs = 2000): Promise<HttpAnswer | undefined> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 65536) body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

export type WaitOutcome = { ok: true } | { ok: false; reason: string };

/**
 * Polls `check` until it returns true or the deadline passes. `abort` is asked between polls and
 * ends the wait early with its reason (e.g. "the process exited").
 */
export async function waitUntil(
  check: () => Promise<boolean>,
  options: { timeoutMs: number; intervalMs?: number; abort?: () => string | undefined },
): Promise<WaitOutcome> {
  const deadline = Date.now() + options.timeoutMs;
  const interval = options.intervalMs ?? 250;
  for (;;) {
    if (await check()) return { ok: true };
    const aborted = options.abort?.();
    if (aborted) return { ok: false, reason: aborted };
    if (Date.now() >= deadline) {
      return { ok: false, reason: `not healthy after ${Math.round(options.timeoutMs / 1000)} s` };
    }
    await sleep(interval);
  }
}
