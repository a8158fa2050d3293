import type { Command } from 'commander';
import { describeConfig, getConfig } from '../../config';
import { printJson, printTable } from '../output';

export function registerConfigCommand(program: Command): void {
  program
    .command('config')
    .description('print the effective settings (secrets redacted) and where each comes from')
    .option('--json', 'machine-readable output')
    .action((opts: { json?: boolean }) => {
      const rows = describeConfig(getConfig());
      if (opts.json) printJson(rows);
      else
        printTable(
          ['setting', 'value', 'source'],
          rows.map((r) => [r.name, r.value, r.source]),
        );
    });
}
