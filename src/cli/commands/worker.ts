import type { Command } from 'commander';
import { getConfig } from '../../config';
import { runWorker } from '../../worker/run';
import { useColor } from '../output';

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description(
      'run the Temporal worker: all dbops workflows and activities (SIGINT/SIGTERM stop it gracefully); logs JSON lines, or a human format on a terminal (DBOPS_LOG_FORMAT, DBOPS_LOG_LEVEL)',
    )
    .action(async () => {
      // The log's colours follow the CLI's one rule (NO_COLOR, FORCE_COLOR, a terminal).
      await runWorker(getConfig(), { colour: useColor(process.stdout) });
    });
}
