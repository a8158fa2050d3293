import { CancellationScope, log, upsertSearchAttributes } from '@temporalio/workflow';
import type { PointInTimeActivities } from '../../activities/postgres/pitr';
import type { RestoreActivities } from '../../activities/postgres';
import { unlistedTargetProblem } from '../../common/approvals';
import { FailureType, failure, rootMessage } from '../../common/failures';
import { describeRecoveryTarget, type PointInTimeRestoreInput, type RecoveredPoint } from '../../common/pitr';
import {
  type RestorePlan,
  type RestoreResult,
  planHash,
  preRestoreDatabaseName,
  restoreSteps,
  shadowDatabaseName,
} from '../../common/restore';
import { DBOPS_BACKUP_ID, DBOPS_DATABASE, DBOPS_OPERATION } from '../../common/search-attributes';
import { withTargetLock } from '../target-lock';
import { ApprovalGate, awaitApproval } from './approval';
import { analyzeUnlessRestored, applyRestore } from './apply';
import { checkNames, refuseSystemTarget } from './plan';
import { applyPolicy } from './policy';
import { reportDryRun, reportNotApproved, reportRestored } from './report';
import { type Planned, RestoreRun, type RestoreWorkflowSettings } from './run';

/**
 * Point-in-time restore (`dbops restore --to-time|--to-lsn|--to-latest`), without touching the live
 * database until an operator approves:
 * 0. policy and the target lock, as for any restore;
 * 1. resolve: the newest proven base backup chain consistent before the target, and WAL covering it;
 * 2. recover (one activity): the chain assembled (pg_combinebackup) into a scratch data directory, a
 *    temporary PostgreSQL replaying WAL from the store to the target, then the database copied into
 *    the shadow on the live server (pg_dump -Fd -j | pg_restore -j); the temporary server is gone
 *    when the activity ends, whatever happens;
 * 3. verify the shadow against the recovered copy's exact row counts, count the live target's rows;
 * 4. approval of a plan that shows the target time, the last transaction replayed and the row
 *    difference from the live database; rejected, timed out or a dry run: the shadow is dropped;
 * 5. cut-over, ANALYZE unless statistics came along, report; rollback as for any restore.
 */
export async function pointInTimeRestoreWorkflow(
  input: PointInTimeRestoreInput & RestoreWorkflowSettings,
): Promise<RestoreResult> {
  const run = new RestoreRun(input);
  const approvals = new ApprovalGate(run);
  refuseSystemTarget(input.target);
  await applyPolicy(run);
  const target = input.target ?? input.database;
  return withTargetLock(target, () => recoverApproveApply(run, approvals, input, target));
}

async function recoverApproveApply(
  run: RestoreRun,
  approvals: ApprovalGate,
  input: PointInTimeRestoreInput,
  target: string,
): Promise<RestoreResult> {
  const now = new Date(run.started);
  const [shadow, preRestore] = checkNames(() => [
    shadowDatabaseName(target, now),
    preRestoreDatabaseName(target, now),
  ]);
  let planned: Planned;
  let recovered: RecoveredPoint;
  try {
    ({ planned, recovered } = await recoverAndPlan(run, input, target, shadow, preRestore));
  } catch (err) {
    await dropShadow(run, shadow);
    run.phase('failed', { error: rootMessage(err) });
    throw err;
  }
  if (input.dryRun) {
    await dropShadow(run, shadow);
    return reportDryRun(run, planned);
  }
  const approval = await awaitApproval(run, approvals);
  if (approval?.decision !== 'approve') {
    await dropShadow(run, shadow);
    return reportNotApproved(run, planned, approval);
  }
  const statisticsRestored = recovered.statisticsRestored;
  const applied = await applyRestore(run, planned, approval, async () => ({ statisticsRestored }));
  await analyzeUnlessRestored(run, planned, applied.statisticsRestored);
  return CancellationScope.nonCancellable(() => reportRestored(run, planned, approval, applied));
}

function pitr(run: RestoreRun, summary: string) {
  return run.streaming<PointInTimeActivities>(summary);
}

/** Steps 1–3: everything the approver sees is measured on the recovered shadow, nothing is estimated. */
async function recoverAndPlan(
  run: RestoreRun,
  input: PointInTimeRestoreInput,
  target: string,
  shadow: string,
  preRestore: string,
): Promise<{ planned: Planned; recovered: RecoveredPoint }> {
  const unlisted = unlistedTargetProblem(target, run.worker, input.allowUnlistedTarget);
  if (unlisted) throw failure(FailureType.Refused, unlisted);
  const what = describeRecoveryTarget(input.recovery);
  run.phase('checking', { backupId: input.backup, target });
  if (run.info.typedSearchAttributes.get(DBOPS_OPERATION) !== undefined) {
    upsertSearchAttributes([
      { key: DBOPS_BACKUP_ID, value: input.backup },
      { key: DBOPS_DATABASE, value: target },
    ]);
  }
  const source = await run
    .short<PointInTimeActivities>(`find the base backups and WAL for ${what}`)
    .resolvePointInTime({ target: input.recovery });
  run.phase('restoring');
  const recovered = await pitr(run, `recover ${input.database} to ${what} into ${shadow}`).recoverIntoShadow({
    source,
    target: input.recovery,
    database: input.database,
    shadow,
    jobs: input.jobs,
    ...(input.dumpOptions ? { dumpOptions: input.dumpOptions } : {}),
  });
  run.phase('verifying');
  await pitr(run, `verify ${shadow} against the recovered copy`).verifyPointInTimeShadow({
    shadow,
    recovered: {
      tables: recovered.tables,
      schemaVersion: recovered.schemaVersion,
      extensions: recovered.extensions,
    },
  });
  run.phase('planning');
  const targetInfo = await run
    .short<RestoreActivities>(`describe ${target}`)
    .describeDatabase({ name: target });
  const live = await pitr(run, `count the rows of ${target} now`).countLiveRows({ database: target });
  const base = {
    target,
    targetExists: targetInfo.exists,
    targetSizeBytes: targetInfo.sizeBytes,
    backupId: recovered.baseBackups.at(-1)!,
    backupDatabase: input.database,
    backupTakenAt: recovered.lastTransactionAt ?? source.baseStoppedAt,
    format: 'directory' as const,
    compression: 'none' as const,
    sizeBytes: recovered.walBytes,
    rawBytes: recovered.walBytes,
    sha256: '',
    schemaVersion: recovered.schemaVersion,
    tables: recovered.tables.length,
    rows: recovered.rows,
    extensions: recovered.extensions,
    verified: 'passed' as const,
    shadowDatabase: shadow,
    preRestoreDatabase: preRestore,
    keepDays: run.policy.keepDays,
    jobs: input.jobs,
  };
  const steps = restoreSteps(base).slice(3); // the shadow is already filled and verified
  const plan: RestorePlan = {
    ...base,
    steps: [
      `recovered ${input.database} to ${what} from ${recovered.baseBackups.join(' + ')} and ${recovered.walSegments} WAL segments into ${shadow} (done, verified: ${recovered.tables.length} tables, ${recovered.rows} rows)`,
      ...steps,
    ],
    estimatedSeconds: 5,
    pointInTime: {
      recoveryTarget: what,
      baseBackups: recovered.baseBackups,
      reachedLsn: recovered.reachedLsn,
      lastTransactionAt: recovered.lastTransactionAt,
      walSegments: recovered.walSegments,
      recoveryMs: recovered.durationMs,
      liveTargetRows: live.exists ? live.rows : null,
      recoveredRows: recovered.rows,
      rowDifference: live.exists ? recovered.rows - live.rows : null,
    },
  };
  const hash = planHash(plan);
  run.status = { ...run.status, plan, planHash: hash };
  return { planned: { plan, hash }, recovered };
}

/** Best effort: a shadow left behind is this run's, and `dbops db cleanup` removes it. */
async function dropShadow(run: RestoreRun, shadow: string): Promise<void> {
  try {
    await CancellationScope.nonCancellable(() =>
      run.short<RestoreActivities>(`drop shadow ${shadow}`).dropRestoreDatabase({ name: shadow }),
    );
  } catch (err) {
    log.error('could not drop the shadow database; `dbops db cleanup` removes it', {
      shadow,
      error: rootMessage(err),
    });
  }
}
