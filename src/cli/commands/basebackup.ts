import type { Command } from 'commander';
import { startBaseBackup } from '../../client/basebackup';
import { withClient, workflowUrl } from '../../client/connection';
import { getConfig } from '../../config';
import { humanBytes, humanDuration, printJson } from '../output';

/** `dbops basebackup [--incremental] [--wait]`: a physical base backup of the configured server. */
export function registerBaseBackupCommand(program: Command): void {
  program
    .command('basebackup')
    .description(
      'take a base backup of the configured PostgreSQL server now (pg_basebackup, proven with pg_verifybackup)',
    )
    .option(
      '--incremental',
      'only what changed since the newest base backup (needs summarize_wal = on and a full one)',
    )
    .option('--wait', 'wait for the base backup and print it')
    .option('--json', 'machine-readable output')
    .action(async (opts: { incremental?: boolean; wait?: boolean; json?: boolean }) => {
      const config = getConfig();
      const kind = opts.incremental ? 'incremental' : 'full';
      await withClient(config, async (client) => {
        const handle = await startBaseBackup(client, config, { kind });
        const url = workflowUrl(config, handle.workflowId);
        if (!opts.wait) {
          if (opts.json) printJson({ kind, workflowId: handle.workflowId, url });
          else process.stdout.write(`${kind} base backup started: ${handle.workflowId}\n  run: ${url}\n`);
          return;
        }
        if (!opts.json) process.stderr.write(`${kind} base backup: ${url}\n`);
        const r = await handle.result();
        if (opts.json) printJson({ ...r, workflowId: handle.workflowId, url });
        else
          process.stdout.write(
            `base backup ${r.id}${r.parentId ? ` (incremental on ${r.parentId})` : ''}: ${humanBytes(r.sizeBytes)} (${humanBytes(r.rawBytes)} raw) in ${humanDuration(r.durationMs)}, ${r.startLsn}..${r.stopLsn}, at ${r.location}\n  verified: ${r.verification}\n`,
          );
      });
    });
}
