import type { Command } from 'commander';
import { LATEST } from '../../../common/restore';
import { withClient, workflowUrl } from '../../client/connection';
import { resolveBackupId, startVerify } from '../../client/verify';
import { getConfig } from '../../config';
import { humanDuration, printJson } from '../output';

export function registerVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description(
      'prove a backup restores: restore it into a scratch database, compare it with its manifest, record the result',
    )
    .argument('<backup>', `backup id or ${LATEST}`)
    .option('--database <db>', `whose backups ${LATEST} looks at (default: the first configured)`)
    .option('--json', 'machine-readable output')
    .action(async (selector: string, opts: { database?: string; json?: boolean }) => {
      const config = getConfig();
      const backupId = await resolveBackupId(config, selector, opts.database);
      await withClient(config, async (client) => {
        const handle = await startVerify(client, config, backupId);
        if (!opts.json)
          process.stderr.write(`verifying ${backupId}: ${workflowUrl(config, handle.workflowId)}\n`);
        const r = await handle.result();
        if (opts.json) printJson(r);
        else
          process.stdout.write(
            `${r.backupId}: ${r.status} in ${humanDuration(r.durationMs)} — ${r.detail}\n`,
          );
      });
    });
}
