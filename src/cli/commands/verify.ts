import type { Command } from 'commander';
import { LATEST } from '../../../common/restore';
import { withClient, workflowUrl } from '../../client/connection';
import { resolveBackupId, startVerify } from '../../client/verify';
import { getConfig } from '../../config';
import { humanDuration, printJson } from '../output';
import { numberOption } from '../options';

export function registerVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description(
      'prove a backup restores: restore it into a scratch database, compare it with its manifest, record the result',
    )
    .argument('<backup>', `backup id or ${LATEST}`)
    .option('--database <db>', `whose backups ${LATEST} looks at (default: the first configured)`)
    .option(
      '--rounds <n>',
      'test restores to try when one ends without a verdict (server down, scratch full), 30 min apart; scheduled verifications try 4',
      '1',
    )
    .option('--json', 'machine-readable output')
    .action(async (selector: string, opts: { database?: string; rounds: string; json?: boolean }) => {
      // Someone waiting at a terminal wants "could not verify" now, not after 1.5 h of retries.
      const rounds = numberOption('--rounds', opts.rounds, (n) =>
        Number.isInteger(n) && n >= 1 && n <= 10 ? undefined : 'must be a whole number from 1 to 10',
      );
      const config = getConfig();
      const backupId = await resolveBackupId(config, selector, opts.database);
      await withClient(config, async (client) => {
        const handle = await startVerify(client, config, backupId, rounds);
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
