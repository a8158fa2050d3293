import os from 'node:os';
import type { Command } from 'commander';
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { BackupInputError, parseBackupId } from '../../../common/backup';
import { FailureType, failure } from '../../../common/failures';
import { restoreRollbackWorkflowId, restoreWorkflowId } from '../../../common/ids';
import {
  type ApprovalRecord,
  type RestoreResult,
  type RestoreStatus,
  type RestoreWorkflowInput,
  type RollbackResult,
  assertDatabaseName,
  assertRestoreTarget,
  LATEST,
  LATEST_VERIFIED,
  RestoreInputError,
} from '../../../common/restore';
import type { restoreWorkflow } from '../../../workflows/restore';
import type { restoreRollbackWorkflow } from '../../../workflows/restore-rollback';
import { restoreApprovalUpdate, restoreStatusQuery } from '../../../workflows/restore-messages';
import { DBOPS_BACKUP_ID, DBOPS_DATABASE, DBOPS_OPERATION } from '../../../common/search-attributes';
import { getConfig, type Config } from '../../config';
import { withClient, workflowUrl } from '../../temporal';
import { createProgress, humanBytes, humanDuration, plural, printJson, printTable } from '../output';

/** `approved by alice`, `rejected by bob`: the decision in the past tense. */
export function decidedText(approval: Pick<ApprovalRecord, 'decision' | 'by' | 'at'>): string {
  return `${approval.decision === 'approve' ? 'approved' : 'rejected'} by ${approval.by} at ${approval.at}`;
}

function inputError(err: unknown): never {
  if (err instanceof RestoreInputError || err instanceof BackupInputError)
    throw failure(FailureType.InvalidInput, err.message);
  throw err;
}

/** Checks names locally (clear error, nothing started) and works out the target. */
export function restoreTarget(config: Config, backup: string, target?: string, database?: string): string {
  try {
    if (database !== undefined) assertDatabaseName(database, '--database');
    const isSelector = backup === LATEST || backup === LATEST_VERIFIED;
    const t = target ?? (isSelector ? (database ?? config.databases[0]!) : parseBackupId(backup).database);
    assertDatabaseName(t, 'target database');
    assertRestoreTarget(t);
    return t;
  } catch (err) {
    return inputError(err);
  }
}

export async function startRestore(
  client: Client,
  config: Config,
  options: {
    backup: string;
    target?: string;
    database?: string;
    dryRun?: boolean;
    requestedBy: string;
    now?: Date;
  },
): Promise<WorkflowHandle<typeof restoreWorkflow>> {
  const target = restoreTarget(config, options.backup, options.target, options.database);
  const input: RestoreWorkflowInput = {
    backup: options.backup,
    database: options.database ?? target,
    target,
    dryRun: options.dryRun,
    requestedBy: options.requestedBy,
    approvalTimeoutMs: config.restore.approvalTimeoutMs,
    fourEyes: config.restore.fourEyes,
    keepDays: config.restore.keepDays,
    jobs: config.restore.jobs,
  };
  const now = options.now ?? new Date();
  const workflowId = `${restoreWorkflowId(target, now)}${options.dryRun ? '-dry-run' : ''}`;
  const attrs = [
    { key: DBOPS_OPERATION, value: options.dryRun ? 'restore-dry-run' : 'restore' },
    { key: DBOPS_DATABASE, value: target },
    ...(options.backup === LATEST || options.backup === LATEST_VERIFIED
      ? []
      : [{ key: DBOPS_BACKUP_ID, value: options.backup }]),
  ];
  try {
    return await client.workflow.start<typeof restoreWorkflow>('restoreWorkflow', {
      taskQueue: config.temporal.taskQueue,
      workflowId,
      args: [input],
      staticSummary: `restore ${target} from ${options.backup}${options.dryRun ? ' (dry run)' : ''}, requested by ${options.requestedBy}`,
      typedSearchAttributes: attrs,
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return client.workflow.getHandle(workflowId);
    throw err;
  }
}

async function pollStatus(
  handle: WorkflowHandle,
  until: (s: RestoreStatus) => boolean,
  onStatus?: (s: RestoreStatus) => void,
): Promise<RestoreStatus | undefined> {
  for (;;) {
    const desc = await handle.describe();
    let s: RestoreStatus | undefined;
    try {
      s = await handle.query(restoreStatusQuery);
    } catch {
      s = undefined;
    }
    if (s) onStatus?.(s);
    if (s && until(s)) return s;
    if (desc.status.name !== 'RUNNING') return s;
    await new Promise((r) => setTimeout(r, 500));
  }
}

function printPlan(s: RestoreStatus, workflowId: string, link: string): void {
  const p = s.plan!;
  process.stdout.write(
    [
      `Restore ${p.target} from ${p.backupId} (${humanBytes(p.sizeBytes)}, ${p.format}/${p.compression}, schema ${p.schemaVersion ?? 'none'}, verification: ${p.verified})`,
      `  ${plural(p.tables, 'table')}, ${plural(p.rows, 'row')}, extensions [${p.extensions.join(', ')}]; estimated ${humanDuration(p.estimatedSeconds * 1000)}`,
      ...p.steps.map((step, i) => `  ${i + 1}. ${step}`),
      `Plan hash: ${s.planHash}`,
      s.approvalDeadline
        ? `Waiting for approval until ${s.approvalDeadline} (requested by ${s.requestedBy})`
        : '',
      s.approvalDeadline
        ? `Approve: dbops restore approve ${workflowId} --as NAME --plan-hash ${s.planHash}`
        : '',
      `Web UI: ${link}`,
    ]
      .filter(Boolean)
      .join('\n') + '\n',
  );
}

async function waitWithProgress(handle: WorkflowHandle, json: boolean): Promise<RestoreResult> {
  const bar = json
    ? undefined
    : createProgress({
        format: 'restore [{bar}] {step}/{steps} {phase}',
        plainFormat: 'restore: step {step}/{steps} {phase}',
      });
  bar?.start(10, 0, { phase: 'starting', step: 0, steps: 10 });
  try {
    await pollStatus(
      handle,
      () => false,
      (s) => {
        bar?.setTotal(s.steps);
        bar?.update(s.step, { phase: s.phase, step: s.step, steps: s.steps });
      },
    );
    return (await handle.result()) as RestoreResult;
  } finally {
    bar?.stop();
  }
}

function printResult(r: RestoreResult): void {
  const lines = [`${r.outcome}: ${r.target} from ${r.plan.backupId} in ${humanDuration(r.durationMs)}`];
  if (r.approval)
    lines.push(`${decidedText(r.approval)}${r.approval.comment ? ` (${r.approval.comment})` : ''}`);
  if (r.cutoverMs !== null) lines.push(`cut-over window: ${r.cutoverMs} ms`);
  if (r.preRestoreDatabase)
    lines.push(
      `previous database kept as ${r.preRestoreDatabase} (${plural(r.plan.keepDays, 'day')}); undo with: dbops restore rollback <workflow-id>`,
    );
  if (r.link) lines.push(`Web UI: ${r.link}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function decide(
  workflowId: string,
  decision: 'approve' | 'reject',
  opts: { as: string; comment?: string; planHash?: string; json?: boolean },
) {
  const config = getConfig();
  await withClient(config, async (client) => {
    const handle = client.workflow.getHandle(workflowId);
    const status = await handle.query(restoreStatusQuery);
    const planHash = opts.planHash ?? status.planHash ?? '';
    let record: ApprovalRecord;
    try {
      record = await handle.executeUpdate(restoreApprovalUpdate, {
        args: [{ decision, by: opts.as, comment: opts.comment, planHash }],
      });
    } catch (err) {
      const cause = (err as { cause?: Error }).cause;
      throw failure(
        FailureType.Refused,
        `${decision === 'approve' ? 'approval' : 'rejection'} refused: ${cause?.message ?? (err as Error).message}`,
      );
    }
    if (opts.json) printJson(record);
    else process.stdout.write(`${decidedText(record)} (plan ${record.planHash.slice(0, 12)}…)\n`);
  });
}

export function registerRestoreCommand(program: Command): void {
  const restore = program
    .command('restore')
    .description('restore a backup into a shadow database and swap it in after human approval');
  restore
    // `dbops restore <backup> ...` runs this default subcommand; approve/reject/status/list/rollback are siblings.
    .command('start', { isDefault: true })
    .description('start a restore: resolve and check the backup, show the plan, wait for approval')
    .argument('<backup>', `backup id, ${LATEST} or ${LATEST_VERIFIED}`)
    .option('--target <db>', "database to replace (default: the backup's database)")
    .option(
      '--database <db>',
      `whose backups ${LATEST}/${LATEST_VERIFIED} look at (default: --target or the first configured)`,
    )
    .option('--dry-run', 'show the plan and change nothing')
    .option('--wait', 'wait for the approval and the restore, with progress')
    .option('--as <name>', 'who requests the restore', process.env.USER ?? os.userInfo().username)
    .option('--json', 'machine-readable output')
    .action(
      async (
        backup: string,
        opts: {
          target?: string;
          database?: string;
          dryRun?: boolean;
          wait?: boolean;
          as: string;
          json?: boolean;
        },
      ) => {
        const config = getConfig();
        await withClient(config, async (client) => {
          const handle = await startRestore(client, config, {
            backup,
            target: opts.target,
            database: opts.database,
            dryRun: opts.dryRun,
            requestedBy: opts.as,
          });
          const link = workflowUrl(config, handle.workflowId);
          if (opts.dryRun) {
            const r = await handle.result();
            if (opts.json) printJson({ workflowId: handle.workflowId, ...r });
            else
              printPlan(
                { plan: r.plan, planHash: r.planHash, requestedBy: opts.as } as RestoreStatus,
                handle.workflowId,
                link,
              );
            return;
          }
          const s = await pollStatus(handle, (x) => x.phase === 'awaiting-approval');
          if (!s || s.phase !== 'awaiting-approval') {
            await handle.result(); // surfaces the failure (e.g. a corrupted backup is refused here)
          }
          if (!opts.json && s?.plan) printPlan(s, handle.workflowId, link);
          if (opts.wait) {
            const r = await waitWithProgress(handle, Boolean(opts.json));
            if (opts.json) printJson({ workflowId: handle.workflowId, ...r });
            else printResult(r);
            if (r.outcome !== 'restored') process.exitCode = 1;
          } else if (opts.json) {
            printJson({ workflowId: handle.workflowId, status: s, link });
          }
        });
      },
    );

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
  ).action((id: string, opts: { as: string; comment?: string; planHash?: string; json?: boolean }) =>
    decide(id, 'approve', opts),
  );
  decisionOptions(restore.command('reject').description('reject a waiting restore')).action(
    (id: string, opts: { as: string; comment?: string; planHash?: string; json?: boolean }) =>
      decide(id, 'reject', opts),
  );

  restore
    .command('status')
    .argument('<workflow-id>')
    .option('--json', 'machine-readable output')
    .description('phase, plan and approval of a restore')
    .action(async (id: string, opts: { json?: boolean }) => {
      const config = getConfig();
      await withClient(config, async (client) => {
        const handle = client.workflow.getHandle(id);
        const desc = await handle.describe();
        const s = await handle.query(restoreStatusQuery);
        if (opts.json) return printJson({ workflowId: id, workflowStatus: desc.status.name, ...s });
        process.stdout.write(
          `${id}: ${desc.status.name}, phase ${s.phase} (${s.step}/${s.steps})${s.error ? `, error: ${s.error}` : ''}\n`,
        );
        if (s.plan) printPlan(s, id, workflowUrl(config, id));
        if (s.approval) process.stdout.write(`${decidedText(s.approval)}\n`);
      });
    });

  restore
    .command('list')
    .option('--json', 'machine-readable output')
    .description('list restores, pending approvals first')
    .action(async (opts: { json?: boolean }) => {
      const config = getConfig();
      await withClient(config, async (client) => {
        const rows: {
          workflowId: string;
          status: string;
          phase: string;
          target: string;
          backup: string;
          waitingSince: string | null;
          started: string;
        }[] = [];
        for await (const wf of client.workflow.list({ query: "DbopsOperation = 'restore'" })) {
          let s: RestoreStatus | undefined;
          if (wf.status.name === 'RUNNING')
            s = await client.workflow
              .getHandle(wf.workflowId)
              .query(restoreStatusQuery)
              .catch(() => undefined);
          rows.push({
            workflowId: wf.workflowId,
            status: wf.status.name,
            phase: s?.phase ?? '',
            target: String(wf.typedSearchAttributes.get(DBOPS_DATABASE) ?? ''),
            backup: String(wf.typedSearchAttributes.get(DBOPS_BACKUP_ID) ?? ''),
            waitingSince: s?.phase === 'awaiting-approval' ? s.waitingSince : null,
            started: wf.startTime.toISOString(),
          });
          if (rows.length >= 200) break;
        }
        rows.sort(
          (a, b) =>
            Number(Boolean(b.waitingSince)) - Number(Boolean(a.waitingSince)) ||
            (a.started < b.started ? 1 : -1),
        );
        if (opts.json) return printJson(rows);
        printTable(
          ['workflow id', 'status', 'phase', 'target', 'backup', 'waiting since', 'started'],
          rows.map((r) => [r.workflowId, r.status, r.phase, r.target, r.backup, r.waitingSince, r.started]),
        );
      });
    });

  restore
    .command('rollback')
    .argument('<workflow-id>', 'the restore to undo')
    .option('--json', 'machine-readable output')
    .description('swap the kept pre-restore database back in')
    .action(async (id: string, opts: { json?: boolean }) => {
      const config = getConfig();
      await withClient(config, async (client) => {
        const r = (await client.workflow.getHandle(id).result()) as RestoreResult;
        if (r.outcome !== 'restored' || !r.preRestoreDatabase) {
          throw failure(
            FailureType.Refused,
            `restore ${id} ${r.outcome === 'restored' ? 'created a new database (nothing was replaced)' : `did not restore (${r.outcome})`}: nothing to roll back`,
          );
        }
        const result: RollbackResult = await client.workflow.execute<typeof restoreRollbackWorkflow>(
          'restoreRollbackWorkflow',
          {
            taskQueue: config.temporal.taskQueue,
            workflowId: restoreRollbackWorkflowId(id),
            args: [
              {
                target: r.target,
                preRestoreDatabase: r.preRestoreDatabase,
                restoreWorkflowId: id,
                keepDays: config.restore.keepDays,
              },
            ],
            typedSearchAttributes: [
              { key: DBOPS_OPERATION, value: 'restore-rollback' },
              { key: DBOPS_DATABASE, value: r.target },
            ],
          },
        );
        if (opts.json) return printJson(result);
        process.stdout.write(
          `${result.target} is back to ${result.restoredFrom} (cut-over ${result.cutoverMs} ms); the restored database is kept as ${result.replacedKeptAs}\n`,
        );
      });
    });
}
