import type { Command } from 'commander';
import { getConfig } from '../../config';
import { CODEC_SERVER_DEFAULT_HOST, CODEC_SERVER_DEFAULT_PORT, runCodecServer } from '../../codec/run';
import { numberOption } from '../options';

export function registerCodecServerCommand(program: Command): void {
  program
    .command('codec-server')
    .description(
      "serve Temporal's codec endpoints (POST /encode, /decode) with DBOPS_PAYLOAD_KEYS, so the Web UI and the temporal CLI show encrypted payloads in clear",
    )
    .option('--port <n>', 'port to listen on', String(CODEC_SERVER_DEFAULT_PORT))
    .option(
      '--host <address>',
      'address to bind (loopback by default; 0.0.0.0 in a pod behind an authenticating proxy)',
      CODEC_SERVER_DEFAULT_HOST,
    )
    .option(
      '--cors-origin <url>',
      "browser origin allowed to call it, repeatable (default: the Web UI's, DBOPS_TEMPORAL_UI_URL)",
      (value: string, all: string[]) => [...all, value],
      [] as string[],
    )
    .action(async (opts: { port: string; host: string; corsOrigin: string[] }) => {
      const port = numberOption('--port', opts.port, (n) =>
        Number.isInteger(n) && n >= 0 && n <= 65535 ? undefined : 'must be a port number from 0 to 65535',
      );
      await runCodecServer(getConfig(), { host: opts.host, port, corsOrigins: opts.corsOrigin });
    });
}
