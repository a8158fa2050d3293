import os from 'node:os';
import type { Command } from 'commander';
import { LATEST, LATEST_VERIFIED, type RestoreResult, type RestoreStatus } from '../../../../common/restore';
import { withClient, workflowUrl } from '../../../client/connection';
import { pollRestoreStatus, restoreTarget, startRestore, type RestoreHandle } from '../../../client/restore';
import { pointInTimeTarget, recoveryTarget, startPointInTimeRestore } from '../../../client/pitr-restore';
import { FailureType, failure } from '../../../../common/failures';
import { getConfig } from '../../../config';
import { numberOption } from '../../options';
import { createProgress, printJson } from '../../output';
import { KEY_HELP } from './keys';
import { printPlan, printResult } from './print';

interface StartOptions {
  target?: string;
  database?: string;
  dryRun?: boolean;
  wait?: boolean;
  as: string;
  key?: string;
  keepDays?: string;
  fourEyes?: boolean;
  allowUnlistedTarget?: boolean;
  json?: boolean;
  toTime?: string;
  toLsn?: string;
  toLatest?: boolean;
}

async function waitWithProgress(handle: RestoreHandle, json: boolean): Promise<RestoreResult> {
  const bar = json
    ? undefined
    : createProgress({
        format: 'restore [{bar}] {step}/{steps} {phase}',
        plainFormat: 'restore: step {step}/{steps} {phase}',
      });
  bar?.start(10, 0, { phase: 'starting', step: 0, steps: 10 });
  try {
    await pollRestoreStatus(
      handle,
      () => false,
      (s) => {
        bar?.setTotal(s.steps);
        bar?.update(s.step, { phase: s.phase, step: s.step, steps: s.steps });
      },
    );
    return await handle.result();
  } finally {
    bar?.stop();
  }
}

/** `dbops restore <backup>` or `dbops restore --to-time|--to-lsn|--to-latest`: exactly one of them. */
function what(backup: string | undefined, opts: StartOptions) {
  const recovery = recoveryTarget(opts);
  if (recovery && backup !== undefined)
    throw failure(
      FailureType.InvalidInput,
      `give a backup id or --to-time/--to-lsn/--to-latest, not both (${backup} is a logical backup)`,
    );
  if (!recovery && backup === undefined)
    throw failure(
      FailureType.InvalidInput,
      `name what to restore: a backup id, ${LATEST} or ${LATEST_VERIFIED}, or a point in time with --to-time/--to-lsn/--to-latest and --database`,
    );
  return recovery;
}

async function start(backup: string | undefined, opts: StartOptions): Promise<void> {
  const config = getConfig();
  // Names (backup id or point in time, --target, --database) are refused before anything connects.
  const recovery = what(backup, opts);
  if (recovery) pointInTimeTarget(opts.database, opts.target, opts.as);
  else restoreTarget(config, backup!, opts.target, opts.database, opts.as);
  const keepDays =
    opts.keepDays === undefined
      ? undefined
      : numberOption('--keep-days', opts.keepDays, (n) =>
          Number.isInteger(n) && n >= 0 && n <= 3650
            ? undefined
            : 'must be a whole number of days, 0 to 3650',
        );
  await withClient(config, async (client) => {
    const common = {
      target: opts.target,
      database: opts.database,
      dryRun: opts.dryRun,
      requestedBy: opts.as,
      key: opts.key ?? config.restore.signingKey,
      keepDays,
      fourEyes: opts.fourEyes,
      allowUnlistedTarget: opts.allowUnlistedTarget,
    };
    const handle = recovery
      ? await startPointInTimeRestore(client, config, { ...common, recovery })
      : await startRestore(client, config, { ...common, backup: backup! });
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
    const s = await pollRestoreStatus(handle, (x) => x.phase === 'awaiting-approval');
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
}

export function registerStart(restore: Command): void {
  restore
    // `dbops restore <backup> ...` runs this default subcommand; approve/reject/status/list/rollback are siblings.
    .command('start', { isDefault: true })
    .description('start a restore: resolve and check the backup, show the plan, wait for approval')
    .argument('[backup]', `backup id, ${LATEST} or ${LATEST_VERIFIED} (or a point in time: --to-time)`)
    .option('--target <db>', "database to replace (default: the backup's database)")
    .option(
      '--database <db>',
      `whose backups ${LATEST}/${LATEST_VERIFIED} look at (default: --target or the first configured)`,
    )
    .option(
      '--to-time <time>',
      'point-in-time restore of --database as it was at this RFC 3339 time (base backups + archived WAL)',
    )
    .option('--to-lsn <lsn>', 'point-in-time restore up to this WAL location')
    .option('--to-latest', 'point-in-time restore up to the end of the archived WAL')
    .option('--dry-run', 'show the plan and change nothing')
    .option('--wait', 'wait for the approval and the restore, with progress')
    .option(
      '--as <name>',
      'who requests the restore, where the worker does not require signatures (signed: the principal of your key)',
      process.env.USER ?? os.userInfo().username,
    )
    .option('--key <file>', KEY_HELP)
    .option('--keep-days <n>', "keep the replaced database longer than the worker's minimum (never shorter)")
    .option('--four-eyes', 'require a second person even where the worker does not')
    .option('--allow-unlisted-target', 'allow a target outside DBOPS_DATABASES (never a system database)')
    .option('--json', 'machine-readable output')
    .action(start);
}
