import type { Command } from 'commander';
import { registerDecisions } from './decide';
import { registerList } from './list';
import { registerRollback } from './rollback';
import { registerStart } from './start';
import { registerStatus } from './status';

/** `dbops restore`: one file per subcommand; the workflow calls are in src/client/restore*.ts. */
export function registerRestoreCommand(program: Command): void {
  const restore = program
    .command('restore')
    .description('restore a backup into a shadow database and swap it in after human approval');
  registerStart(restore);
  registerDecisions(restore);
  registerStatus(restore);
  registerList(restore);
  registerRollback(restore);
}
