// Type-only: the SDK (gRPC, protobuf: ~8 MB of RSS) is loaded on the first connection.
import type { MilvusClient } from '@zilliz/milvus2-sdk-node';
import { failure, FailureType } from '../../common/failures';

/** How to reach Milvus. The token stays in the worker/CLI process: never a workflow argument. */
export interface MilvusConnectionSettings {
  readonly address: string;
  readonly token: string | undefined;
  /** Per-call deadline in ms (connect and every RPC). */
  readonly timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 15_000;

function unreachable(address: string, err: unknown): Error {
  const detail = err instanceof Error ? err.message : String(err);
  return failure(FailureType.Unavailable, `Milvus at ${address} is unreachable: ${detail}`);
}

/**
 * Connects and waits for the server handshake, so an unreachable server fails here with a clear,
 * retryable error (the SDK otherwise connects lazily and leaves a dangling rejected promise).
 */
export async function connectMilvus(settings: MilvusConnectionSettings): Promise<MilvusClient> {
  const { MilvusClient } = await import('@zilliz/milvus2-sdk-node');
  const client = new MilvusClient({
    address: settings.address,
    token: settings.token,
    timeout: settings.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    maxRetries: 1,
    logLevel: 'error',
  });
  try {
    await client.connectPromise;
    const health = await client.checkHealth();
    if (!health.isHealthy) {
      throw new Error(`server reports unhealthy: ${(health.reasons ?? []).join('; ') || 'no reason given'}`);
    }
  } catch (err) {
    client.closeConnection();
    throw unreachable(settings.address, err);
  }
  return client;
}

/** Connects, runs `fn`, always closes; gRPC transport errors inside `fn` become Unavailable failures. */
export async function withMilvus<T>(
  settings: MilvusConnectionSettings,
  fn: (client: MilvusClient) => Promise<T>,
): Promise<T> {
  const client = await connectMilvus(settings);
  try {
    return await fn(client);
  } catch (err) {
    if (isTransportError(err)) throw unreachable(settings.address, err);
    throw err;
  } finally {
    client.closeConnection();
  }
}

function isTransportError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  // gRPC status 14 UNAVAILABLE, 4 DEADLINE_EXCEEDED
  return code === 14 || code === 4;
}

interface StatusLike {
  error_code?: string | number;
  reason?: string;
  code?: number;
}

/** The SDK reports most server-side errors in a status instead of throwing: turn them into failures. */
export function ensureOk<T extends { status?: StatusLike } | StatusLike>(
  res: T,
  what: string,
  type: FailureType = FailureType.Unavailable,
): T {
  const status: StatusLike = 'status' in res && res.status ? res.status : (res as StatusLike);
  const code = status.error_code;
  // 'Success' is ErrorCode.SUCCESS (not imported: the SDK loads lazily).
  if (code !== undefined && code !== 0 && code !== 'Success') {
    throw failure(type, `Milvus ${what} failed: ${status.reason || String(code)}`);
  }
  return res;
}
