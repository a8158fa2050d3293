/**
 * Temporal's remote codec contract, so the Web UI and `temporal --codec-endpoint` show decrypted
 * payloads: `POST /encode` and `POST /decode` (also under `/<namespace>/`, as the CLI's endpoint
 * template sends them) take and return `{"payloads": [{"metadata": {k: base64}, "data": base64}]}`,
 * the proto JSON of Temporal's Payloads. The browser calls it from the Web UI's origin: CORS allows
 * exactly the configured origins, with the headers the UI sends (X-Namespace, Authorization).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { failureTypeOf, rootMessage } from '../../common/failures';

/** A history page the UI decodes can be large; far beyond it is not a codec request. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const ROUTE = /^\/(?:[^/]+\/)?(encode|decode)\/?$/;

interface JsonPayload {
  metadata?: Record<string, string> | null;
  data?: string | null;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function fromJson(p: JsonPayload): Payload {
  if (typeof p !== 'object' || p === null) throw new HttpError(400, 'each payload must be an object');
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) {
    if (typeof v !== 'string') throw new HttpError(400, `payload metadata ${k} must be a base64 string`);
    metadata[k] = Buffer.from(v, 'base64');
  }
  if (p.data !== undefined && p.data !== null && typeof p.data !== 'string') {
    throw new HttpError(400, 'payload data must be a base64 string');
  }
  return { metadata, data: Buffer.from(p.data ?? '', 'base64') };
}

function toJson(p: Payload): JsonPayload {
  return {
    metadata: Object.fromEntries(
      Object.entries(p.metadata ?? {}).map(([k, v]) => [
        k,
        Buffer.from(v ?? new Uint8Array()).toString('base64'),
      ]),
    ),
    data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parsePayloads(body: string): Payload[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new HttpError(400, 'body is not JSON: expected {"payloads": [...]}');
  }
  const list = (parsed as { payloads?: unknown } | null)?.payloads;
  if (!Array.isArray(list)) throw new HttpError(400, 'body must be {"payloads": [...]}');
  return list.map((p) => fromJson(p as JsonPayload));
}

export interface CodecServerOptions {
  codec: PayloadCodec;
  host: string;
  port: number;
  /** Browser origins allowed to call (the Web UI's); requests without an Origin (CLI, curl) always are. */
  corsOrigins: readonly string[];
  /** One line per refused request (the reason, never a payload). */
  log?: (line: string) => void;
}

export interface RunningCodecServer {
  server: Server;
  url: string;
  corsOrigins: readonly string[];
  close(): Promise<void>;
}

function cors(req: IncomingMessage, res: ServerResponse, origins: readonly string[]): boolean {
  const origin = req.headers.origin;
  res.setHeader('Vary', 'Origin');
  if (origin === undefined) return true;
  if (!origins.includes(origin)) return false;
  res.setHeader('Access-Control-Allow-Origin', origin);
  res.setHeader('Access-Control-Allow-Credentials', 'true');
  res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
  res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization');
  res.setHeader('Access-Control-Max-Age', '600');
  return true;
}

async function handle(req: IncomingMessage, res: ServerResponse, opts: CodecServerOptions): Promise<void> {
  const route = ROUTE.exec(new URL(req.url ?? '/', 'http://codec').pathname)?.[1] as
    'encode' | 'decode' | undefined;
  if (!cors(req, res, opts.corsOrigins)) {
    throw new HttpError(
      403,
      `origin ${req.headers.origin} is not allowed: start the codec server with --cors-origin ${req.headers.origin}`,
    );
  }
  if (!route) throw new HttpError(404, 'not found: the codec endpoints are POST /encode and POST /decode');
  if (req.method === 'OPTIONS') {
    res.writeHead(204).end();
    return;
  }
  if (req.method !== 'POST') throw new HttpError(405, `${req.method} not allowed: use POST`);
  const payloads = parsePayloads(await readBody(req));
  let out: Payload[];
  try {
    out = route === 'encode' ? await opts.codec.encode(payloads) : await opts.codec.decode(payloads);
  } catch (err) {
    // A payload this server cannot decrypt (unknown key id, altered): the caller's data, not a server fault.
    throw new HttpError(failureTypeOf(err) ? 400 : 500, rootMessage(err));
  }
  res
    .writeHead(200, { 'Content-Type': 'application/json' })
    .end(JSON.stringify({ payloads: out.map(toJson) }));
}

/** Starts the codec server; resolves once it listens. */
export async function startCodecServer(opts: CodecServerOptions): Promise<RunningCodecServer> {
  const server = createServer((req, res) => {
    handle(req, res, opts).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      const message = err instanceof Error ? err.message : String(err);
      opts.log?.(`${req.method} ${req.url}: ${status} ${message}`);
      if (!res.headersSent) res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: message }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    server,
    url: `http://${host}:${port}`,
    corsOrigins: opts.corsOrigins,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
