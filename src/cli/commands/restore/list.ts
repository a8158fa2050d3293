import type { Command } from 'commander';
import { withClient } from '../../../client/connection';
import { listRestores } from '../../../client/restore-list';
import { getConfig } from '../../../config';
import { printJson, printTable } from '../../output';

export function registerList(restore: Command): void {
  restore
    .command('list')
    .option('--json', 'machine-readable output')
    .description('list restores, pending approvals first')
    .action(async (opts: { json?: boolean }) => {
      const rows = await withClient(getConfig(), listRestores);
      if (opts.json) return printJson(rows);
      printTable(
        ['workflow id', 'status', 'phase', 'target', 'backup', 'waiting since', 'started'],
        rows.map((r) => [r.workflowId, r.status, r.phase, r.target, r.backup, r.waitingSince, r.started]),
      );
    });
}
