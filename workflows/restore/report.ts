import { type ApprovalRecord, signedBy } from '../../common/approvals';
import type { RestoreResult } from '../../common/restore';
import type { Applied } from './apply';
import type { Planned, RestoreRun } from './run';

/** 6. Report: dry run, the plan only. */
export function reportDryRun(run: RestoreRun, planned: Planned): RestoreResult {
  run.phase('done');
  return run.result(planned, 'dry-run', undefined);
}

/** 6. Report: timed out or rejected; nothing was changed. */
export async function reportNotApproved(
  run: RestoreRun,
  planned: Planned,
  approval: ApprovalRecord | undefined,
): Promise<RestoreResult> {
  const { target, backupId } = planned.plan;
  if (!approval) {
    run.phase('timed-out');
    await run.tell(
      `:hourglass: restore of ${target} from ${backupId} cancelled: no approval within ${Math.round(run.policy.approvalTimeoutMs / 60000)} min`,
    );
    run.phase('timed-out');
    return run.result(planned, 'timed-out', undefined);
  }
  await run.tell(`:no_entry: restore of ${target} from ${backupId} rejected by ${signedBy(approval)}`, [
    { title: 'Comment', value: approval.comment ?? '—' },
  ]);
  run.phase('rejected');
  return run.result(planned, 'rejected', approval);
}

/** 6. Report: restored; where the old database is kept. */
export async function reportRestored(
  run: RestoreRun,
  planned: Planned,
  approval: ApprovalRecord,
  applied: Applied,
): Promise<RestoreResult> {
  const { target, backupId, preRestoreDatabase } = planned.plan;
  const { cutover, note } = applied;
  const done = run.result(planned, 'restored', approval, {
    preRestoreDatabase: cutover.targetExisted ? preRestoreDatabase : null,
    cutoverMs: cutover.cutoverMs,
    ...(note ? { note } : {}),
  });
  await run.tell(`${note ? ':warning:' : ':white_check_mark:'} ${target} restored from ${backupId}`, [
    {
      title: 'Approved by',
      value: `${signedBy(approval)}${approval.comment ? ` (${approval.comment})` : ''}`,
    },
    {
      title: 'Cut-over window',
      value: cutover.cutoverMs === null ? 'not measured' : `${cutover.cutoverMs} ms`,
    },
    {
      title: 'Old database kept as',
      value: cutover.targetExisted ? `${preRestoreDatabase} (${run.policy.keepDays} days)` : '—',
    },
    ...(note ? [{ title: 'Note', value: `the restore was ${note}` }] : []),
  ]);
  run.phase('done');
  return { ...done, durationMs: Date.now() - run.started };
}
