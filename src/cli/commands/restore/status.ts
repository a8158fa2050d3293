import type { Command } from 'commander';
import { withClient, workflowUrl } from '../../../client/connection';
import { restoreStatus } from '../../../client/restore';
import { getConfig } from '../../../config';
import { printJson } from '../../output';
import { decidedText, printPlan } from './print';

export function registerStatus(restore: Command): void {
  restore
    .command('status')
    .argument('<workflow-id>')
    .option('--json', 'machine-readable output')
    .description('phase, plan and approval of a restore')
    .action(async (id: string, opts: { json?: boolean }) => {
      const config = getConfig();
      await withClient(config, async (client) => {
        const { workflowStatus, status: s } = await restoreStatus(client, id);
        if (opts.json) return printJson({ workflowId: id, workflowStatus, ...s });
        process.stdout.write(
          `${id}: ${workflowStatus}, phase ${s.phase} (${s.step}/${s.steps})${s.error ? `, error: ${s.error}` : ''}\n`,
        );
        if (s.plan) printPlan(s, id, workflowUrl(config, id));
        if (s.approval) process.stdout.write(`${decidedText(s.approval)}\n`);
      });
    });
}
