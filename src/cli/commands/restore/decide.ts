import type { Command } from 'commander';
import { withClient } from '../../../client/connection';
import { checkDecision, decideRestore } from '../../../client/restore';
import { getConfig } from '../../../config';
import { printJson } from '../../output';
import { decidedText } from './print';

interface DecisionOptions {
  as: string;
  comment?: string;
  planHash?: string;
  json?: boolean;
}

async function decide(workflowId: string, decision: 'approve' | 'reject', opts: DecisionOptions) {
  const config = getConfig();
  checkDecision({ by: opts.as, comment: opts.comment }); // before anything connects
  await withClient(config, async (client) => {
    const record = await decideRestore(client, workflowId, {
      decision,
      by: opts.as,
      comment: opts.comment,
      planHash: opts.planHash,
    });
    if (opts.json) printJson(record);
    else process.stdout.write(`${decidedText(record)} (plan ${record.planHash.slice(0, 12)}…)\n`);
  });
}

/** `restore approve` and `restore reject`: the same options, the opposite decision. */
export function registerDecisions(restore: Command): void {
  const decisionOptions = (c: Command) =>
    c
      .argument('<workflow-id>')
      .requiredOption('--as <name>', 'who decides')
      .option('--comment <text>', 'why')
      .option('--plan-hash <hash>', 'the plan hash you reviewed (default: the one waiting)')
      .option('--json', 'machine-readable output');
  decisionOptions(
    restore
      .command('approve')
      .description('approve a waiting restore (a Temporal Update: the answer is immediate)'),
  ).action((id: string, opts: DecisionOptions) => decide(id, 'approve', opts));
  decisionOptions(restore.command('reject').description('reject a waiting restore')).action(
    (id: string, opts: DecisionOptions) => decide(id, 'reject', opts),
  );
}
