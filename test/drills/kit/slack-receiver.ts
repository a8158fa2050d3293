/** A local HTTP receiver standing in for Slack's webhook endpoint: records every payload it gets. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackReceiver {
  /** The webhook URL to set as DBOPS_SLACK_WEBHOOK_URL. */
  readonly url: string;
  /** Payloads received so far, parsed (a body that is not JSON fails the drill: Slack would refuse it). */
  readonly payloads: { text?: string; [k: string]: unknown }[];
  /** Raw bodies, as sent. */
  readonly bodies: string[];
  close(): Promise<void>;
}

export async function startSlackReceiver(path = '/services/T000/B000/drill'): Promise<SlackReceiver> {
  const payloads: SlackReceiver['payloads'] = [];
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      bodies.push(body);
      try {
        payloads.push(JSON.parse(body) as SlackReceiver['payloads'][number]);
        res.writeHead(200).end('ok');
      } catch {
        res.writeHead(400).end('invalid_payload');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}${path}`,
    payloads,
    bodies,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
