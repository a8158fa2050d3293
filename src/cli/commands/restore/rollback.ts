import os from 'node:os';
import type { Command } from 'commander';
import { signedBy } from '../../../../common/approvals';
import { checkDecision } from '../../../client/restore';
import { withClient } from '../../../client/connection';
import { rollbackRestore } from '../../../client/restore-rollback';
import { getConfig } from '../../../config';
import { printJson } from '../../output';
import { KEY_HELP } from './keys';

interface RollbackOptions {
  as: string;
  key?: string;
  json?: boolean;
}

export function registerRollback(restore: Command): void {
  restore
    .command('rollback')
    .argument('<workflow-id>', 'the restore to undo')
    .option('--key <file>', KEY_HELP)
    .option(
      '--as <name>',
      'who decides, where the worker does not require signatures (signed: the principal of your key)',
      process.env.USER ?? os.userInfo().username,
    )
    .option('--json', 'machine-readable output')
    .description('swap the kept pre-restore database back in (a decision: signed with your SSH key)')
    .action(async (id: string, opts: RollbackOptions) => {
      const config = getConfig();
      checkDecision({ by: opts.as }); // before anything connects
      const result = await withClient(config, (client) =>
        rollbackRestore(client, config, id, {
          requestedBy: opts.as,
          key: opts.key ?? config.restore.signingKey,
        }),
      );
      if (opts.json) return printJson(result);
      const by = result.by
        ? `; decided by ${signedBy({ by: result.by, signer: result.signer ?? null })}`
        : '';
      process.stdout.write(
        `${result.target} is back to ${result.restoredFrom} (cut-over ${result.cutoverMs} ms); the restored database is kept as ${result.replacedKeptAs}${by}\n`,
      );
    });
}
