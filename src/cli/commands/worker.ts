import type { Command } from 'commander';
import { getConfig } from '../../config';
import { runWorker } from '../../worker/run';

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description(
      'run the Temporal worker: all dbops workflows and activities (SIGINT/SIGTERM stop it gracefully)',
    )
    .action(async () => {
      await runWorker(getConfig());
    });
}
