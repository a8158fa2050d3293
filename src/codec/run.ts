import { failure, FailureType } from '../../common/failures';
import type { Config } from '../config';
import { EncryptionCodec } from './encryption';
import { startCodecServer, type RunningCodecServer } from './server';

/** Loopback unless told otherwise: the codec server decrypts for whoever reaches it. */
export const CODEC_SERVER_DEFAULT_HOST = '127.0.0.1';
export const CODEC_SERVER_DEFAULT_PORT = 18081;

export interface CodecServerFlags {
  host: string;
  port: number;
  /** Empty: the Web UI's origin (DBOPS_TEMPORAL_UI_URL). */
  corsOrigins: readonly string[];
}

/** A browser origin as the browser sends it (scheme://host[:port]); a path or a typo is refused. */
export function corsOrigin(text: string): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (!url || !/^https?:$/.test(url.protocol) || (url.pathname !== '/' && url.pathname !== '')) {
    throw failure(
      FailureType.InvalidInput,
      `--cors-origin ${text}: must be the Web UI's origin, scheme://host[:port] (e.g. http://127.0.0.1:18233), no path`,
    );
  }
  return url.origin;
}

/** Starts `dbops codec-server` with the worker's payload keys; refuses without them. */
export async function startConfiguredCodecServer(
  config: Config,
  flags: CodecServerFlags,
): Promise<RunningCodecServer> {
  if (!config.payloadKeys) {
    throw failure(
      FailureType.Misconfigured,
      'DBOPS_PAYLOAD_KEYS is not set: the codec server needs the payload key file the worker uses (README "Encrypted Temporal payloads")',
    );
  }
  const corsOrigins = flags.corsOrigins.length
    ? flags.corsOrigins.map(corsOrigin)
    : [new URL(config.temporal.uiUrl).origin];
  return startCodecServer({
    codec: new EncryptionCodec(config.payloadKeys),
    host: flags.host,
    port: flags.port,
    corsOrigins,
    log: (line) => process.stderr.write(`dbops codec-server: ${line}\n`),
  });
}

/** Serves until SIGINT or SIGTERM, then closes. */
export async function runCodecServer(config: Config, flags: CodecServerFlags): Promise<void> {
  const running = await startConfiguredCodecServer(config, flags);
  process.stdout.write(
    `dbops codec-server: ${running.url} (POST /encode, /decode; keys ${config.payloadKeys!.ids.join(', ')}; CORS ${running.corsOrigins.join(', ')})\n` +
      `  Web UI: set the codec endpoint to ${running.url}; CLI: temporal workflow show --codec-endpoint ${running.url} ...\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await running.close();
}
