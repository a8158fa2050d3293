import type { Command } from 'commander';
import { withClient } from '../../../client/connection';
import { rollbackRestore } from '../../../client/restore-rollback';
import { getConfig } from '../../../config';
import { printJson } from '../../output';

export function registerRollback(restore: Command): void {
  restore
    .command('rollback')
    .argument('<workflow-id>', 'the restore to undo')
    .option('--json', 'machine-readable output')
    .description('swap the kept pre-restore database back in')
    .action(async (id: string, opts: { json?: boolean }) => {
      const config = getConfig();
      const result = await withClient(config, (client) => rollbackRestore(client, config, id));
      if (opts.json) return printJson(result);
      process.stdout.write(
        `${result.target} is back to ${result.restoredFrom} (cut-over ${result.cutoverMs} ms); the restored database is kept as ${result.replacedKeptAs}\n`,
      );
    });
}
