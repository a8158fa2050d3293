import type { Command } from 'commander';
import os from 'node:os';
import { FailureType, failure } from '../../../../common/failures';
import { withClient, workflowUrl } from '../../../client/connection';
import { checkDecision, decideRestore, restoreStatus } from '../../../client/restore';
import { getConfig } from '../../../config';
import { printJson } from '../../output';
import { KEY_HELP } from './keys';
import { decidedText, planText } from './print';

interface DecisionOptions {
  as: string;
  comment?: string;
  planHash?: string;
  key?: string;
  json?: boolean;
}

async function decide(workflowId: string, decision: 'approve' | 'reject', opts: DecisionOptions) {
  const config = getConfig();
  checkDecision({ by: opts.as, comment: opts.comment }); // before anything connects
  await withClient(config, async (client) => {
    if (!opts.planHash) {
      // The hash is what the approver saw: never filled in from whatever plan is waiting now.
      const { status } = await restoreStatus(client, workflowId);
      const shown = status.plan ? planText(status, workflowId, workflowUrl(config, workflowId)) : '';
      throw failure(
        FailureType.InvalidInput,
        `--plan-hash is required: ${decision} names the plan you reviewed.\n${shown || `(${workflowId} has no plan yet: phase ${status.phase})\n`}Review the plan above, then run: dbops restore ${decision} ${workflowId} --plan-hash ${status.planHash ?? '<hash>'}`,
      );
    }
    const record = await decideRestore(client, workflowId, {
      decision,
      by: opts.as,
      comment: opts.comment,
      planHash: opts.planHash,
      key: opts.key ?? config.restore.signingKey,
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
      .option('--plan-hash <hash>', 'the plan hash you reviewed (required; "dbops restore status" prints it)')
      .option('--key <file>', KEY_HELP)
      .option(
        '--as <name>',
        'who decides, where the worker does not require signatures (signed: the principal of your key)',
        process.env.USER ?? os.userInfo().username,
      )
      .option('--comment <text>', 'why')
      .option('--json', 'machine-readable output');
  decisionOptions(
    restore
      .command('approve')
      .description(
        'approve a waiting restore, signed with your SSH key (a Temporal Update: the answer is immediate)',
      ),
  ).action((id: string, opts: DecisionOptions) => decide(id, 'approve', opts));
  decisionOptions(
    restore.command('reject').description('reject a waiting restore, signed with your SSH key'),
  ).action((id: string, opts: DecisionOptions) => decide(id, 'reject', opts));
}
