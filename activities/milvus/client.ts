// Type-only: the SDK (gRPC, protobuf: ~8 MB of RSS) is loaded on the first connection.
import { assertTlsFileReadable } from '../tls-files';
import type { MilvusClient } from '@zilliz/milvus2-sdk-node';
import { failure, FailureType } from '../../common/failures';

/** DBOPS_MILVUS_TLS*: PEM file paths, read by the SDK when it connects. */
export interface MilvusTls {
  /** TLS on (DBOPS_MILVUS_TLS=true or any file or name below); the server is always verified. */
  readonly on: boolean;
  /** The CA of the server certificate; unset: the system CAs. */
  readonly ca: string | undefined;
  /** The mTLS client certificate and key (the SDK sends them only together with the CA). */
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly serverName: string | undefined;
}

/** How to reach Milvus. The token stays in the worker/CLI process: never a workflow argument. */
export interface MilvusConnectionSettings {
  readonly address: string;
  readonly token: string | undefined;
  /** Unset (the dev stack's own probes): plain. */
  readonly tls?: MilvusTls;
  /** Per-call deadline in ms (connect and every RPC). */
  readonly timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 15_000;

function unreachable(settings: MilvusConnectionSettings, err: unknown): Error {
  const detail = err instanceof Error ? err.message : String(err);
  const tls = settings.tls;
  // Behind TLS the cause is as often a certificate as the server: name the settings to check.
  const how = tls?.on
    ? ` (TLS CA ${tls.ca ?? 'system'}, client certificate ${tls.cert ?? 'none'}${tls.serverName !== undefined ? `, server name ${tls.serverName}` : ''}; check DBOPS_MILVUS_TLS_CA, DBOPS_MILVUS_TLS_CERT/DBOPS_MILVUS_TLS_KEY and DBOPS_MILVUS_TLS_SERVER_NAME)`
    : '';
  return failure(FailureType.Unavailable, `Milvus at ${settings.address} is unreachable${how}: ${detail}`);
}

/**
 * Connects and waits for the server handshake, so an unreachable server fails here with a clear,
 * retryable error (the SDK otherwise connects lazily and leaves a dangling rejected promise).
 */
export async function connectMilvus(settings: MilvusConnectionSettings): Promise<MilvusClient> {
  const { MilvusClient } = await import('@zilliz/milvus2-sdk-node');
  const tls = settings.tls;
  if (tls?.on) readableTlsFiles(tls);
  const client = new MilvusClient({
    address: settings.address,
    token: settings.token,
    // The SDK verifies the server with the system CAs (`ssl`), or with `rootCertPath` (and then sends
    // the client pair, if any); serverName overrides the name checked.
    ...(tls?.on && {
      ssl: true,
      tls: {
        rootCertPath: tls.ca,
        certChainPath: tls.cert,
        privateKeyPath: tls.key,
        serverName: tls.serverName,
      },
    }),
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
    throw unreachable(settings, err);
  }
  return client;
}

/** The SDK reads the files itself, failing with a bare ENOENT: say which setting names the file. */
function readableTlsFiles(tls: MilvusTls): void {
  const files = {
    DBOPS_MILVUS_TLS_CA: tls.ca,
    DBOPS_MILVUS_TLS_CERT: tls.cert,
    DBOPS_MILVUS_TLS_KEY: tls.key,
  };
  for (const [variable, file] of Object.entries(files)) {
    if (file === undefined) continue;
    assertTlsFileReadable(variable, file);
  }
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
    if (isTransportError(err)) throw unreachable(settings, err);
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
