import {
  ActivityCancellationType,
  CancellationScope,
  condition,
  isCancellation,
  log,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { NotifyActivities } from '../activities/notify';
import type { RestoreActivities } from '../activities/postgres/restore';
import { FailureType, failure, rootMessage } from '../common/failures';
import {
  type ApprovalRecord,
  type ApprovalRequest,
  type RestorePlan,
  type RestoreResult,
  type RestoreStatus,
  type RestoreWorkflowInput,
  approvalProblem,
  assertRestoreTarget,
  estimateRestoreSeconds,
  planHash,
  preRestoreDatabaseName,
  type RestoreInputError,
  restoreSteps,
  shadowDatabaseName,
} from '../common/restore';
import { activitiesWith } from './activity-profiles';
import { DBOPS_BACKUP_ID, DBOPS_DATABASE, DBOPS_OPERATION } from '../common/search-attributes';
import { restoreApprovalSignal, restoreApprovalUpdate, restoreStatusQuery } from './restore-messages';

const PHASES_WITH_STEPS = [
  'resolving',
  'checking',
  'planning',
  'awaiting-approval',
  'restoring',
  'verifying',
  'cutting-over',
  'analyzing',
  'notifying',
  'done',
];

/**
 * Restore a backup with human approval: resolve and check the backup, plan (hashed), wait for an
 * approval (Update or Signal) or time out, restore into a shadow database, verify it against the
 * manifest, swap it in for the target in one transaction (the old database is kept), ANALYZE,
 * notify. Anything failing or cancelled before cut-over drops the shadow; the target is untouched.
 */
export async function restoreWorkflow(input: RestoreWorkflowInput): Promise<RestoreResult> {
  const info = workflowInfo();
  const started = Date.now();
  const retry = input.maximumAttempts ? { retry: { maximumAttempts: input.maximumAttempts } } : {};
  const short = (summary: string) => activitiesWith<RestoreActivities>('short', { summary, ...retry });
  const streaming = (summary: string) =>
    activitiesWith<RestoreActivities>('streaming', {
      summary,
      ...retry,
      ...(input.heartbeatTimeoutMs ? { heartbeatTimeout: input.heartbeatTimeoutMs } : {}),
      // The activity kills pg_restore before the workflow drops the shadow.
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    });
  const notify = activitiesWith<NotifyActivities>('notify', { summary: 'Slack: restore outcome' });
  // Search attributes exist on servers set up by dbops (the starter sets DbopsOperation); test servers may lack them.
  const indexed = info.typedSearchAttributes.get(DBOPS_OPERATION) !== undefined;

  let status: RestoreStatus = {
    phase: 'resolving',
    step: 1,
    steps: PHASES_WITH_STEPS.length,
    backupId: null,
    target: input.target ?? null,
    requestedBy: input.requestedBy,
    plan: null,
    planHash: null,
    waitingSince: null,
    approvalDeadline: null,
    approval: null,
    error: null,
  };
  const phase = (p: RestoreStatus['phase'], extra: Partial<RestoreStatus> = {}) => {
    const idx = PHASES_WITH_STEPS.indexOf(p);
    status = { ...status, ...extra, phase: p, step: idx >= 0 ? idx + 1 : status.step };
  };
  setHandler(restoreStatusQuery, () => status);

  let awaiting = false;
  let decision: ApprovalRecord | undefined;
  const problem = (req: ApprovalRequest) =>
    approvalProblem(req, {
      requestedBy: input.requestedBy,
      fourEyes: input.fourEyes,
      planHash: status.planHash ?? undefined,
      decided: decision,
      awaiting,
    });
  const accept = (req: ApprovalRequest, via: ApprovalRecord['via']): ApprovalRecord => {
    decision = {
      decision: req.decision,
      by: req.by.trim(),
      comment: req.comment,
      planHash: req.planHash,
      at: new Date(Date.now()).toISOString(),
      via,
    };
    log.info('restore approval decided', { ...decision });
    return decision;
  };
  setHandler(restoreApprovalUpdate, (req) => accept(req, 'update'), {
    validator: (req: ApprovalRequest) => {
      const p = problem(req);
      if (p) throw new Error(p);
    },
  });
  setHandler(restoreApprovalSignal, (req) => {
    const p = problem(req);
    if (p) log.warn('restore approval signal refused', { by: req?.by, problem: p });
    else accept(req, 'signal');
  });

  // Resolve, check and plan: nothing is changed before the approval.
  const resolved = await short(`resolve backup ${input.backup}`).resolveRestoreBackup({
    selector: input.backup,
    database: input.database ?? input.target,
  });
  const manifest = resolved.manifest;
  const target = input.target ?? manifest.database;
  const now = new Date(started);
  let shadow: string;
  let preRestore: string;
  try {
    assertRestoreTarget(target);
    shadow = shadowDatabaseName(target, now);
    preRestore = preRestoreDatabaseName(target, now);
  } catch (err) {
    throw failure(FailureType.InvalidInput, (err as RestoreInputError).message);
  }
  phase('checking', { backupId: manifest.id, target });
  if (indexed) {
    upsertSearchAttributes([
      { key: DBOPS_BACKUP_ID, value: manifest.id },
      { key: DBOPS_DATABASE, value: target },
    ]);
  }
  const archive = await streaming(
    `check archive of ${manifest.id} (size, SHA-256, readability)`,
  ).checkBackupArchive({
    backupId: manifest.id,
  });
  phase('planning');
  const targetInfo = await short(`describe ${target}`).describeDatabase({ name: target });
  const base = {
    target,
    targetExists: targetInfo.exists,
    targetSizeBytes: targetInfo.sizeBytes,
    backupId: manifest.id,
    backupDatabase: manifest.database,
    backupTakenAt: manifest.startedAt,
    format: manifest.format,
    compression: manifest.compression,
    sizeBytes: manifest.sizeBytes,
    rawBytes: manifest.rawBytes,
    sha256: manifest.sha256,
    schemaVersion: manifest.schemaVersion,
    tables: resolved.tables,
    rows: resolved.rows,
    extensions: archive.extensions,
    verified: resolved.verification,
    shadowDatabase: shadow,
    preRestoreDatabase: preRestore,
    keepDays: input.keepDays,
    jobs: input.jobs,
  };
  const plan: RestorePlan = {
    ...base,
    steps: restoreSteps(base),
    estimatedSeconds: estimateRestoreSeconds(Math.max(manifest.rawBytes, manifest.sizeBytes), input.jobs),
  };
  const hash = planHash(plan);
  status = { ...status, plan, planHash: hash };
  const link = await short('Web UI link').workflowRunUrl({ workflowId: info.workflowId, runId: info.runId });
  const result = (outcome: RestoreResult['outcome'], extra: Partial<RestoreResult> = {}): RestoreResult => ({
    outcome,
    plan,
    planHash: hash,
    approval: decision ?? null,
    target,
    preRestoreDatabase: null,
    cutoverMs: null,
    durationMs: Date.now() - started,
    link,
    ...extra,
  });
  const tell = async (text: string, fields: { title: string; value: string }[] = []) => {
    phase('notifying');
    try {
      await notify.notifySlack({
        text,
        fields,
        link: { label: 'Open the run in the Temporal Web UI', url: link },
      });
    } catch (err) {
      log.warn('Slack notification failed', { error: rootMessage(err) });
    }
  };

  if (input.dryRun) {
    phase('done');
    return result('dry-run');
  }

  // Approval
  awaiting = true;
  const waitingSince = new Date(Date.now());
  phase('awaiting-approval', {
    waitingSince: waitingSince.toISOString(),
    approvalDeadline: new Date(waitingSince.getTime() + input.approvalTimeoutMs).toISOString(),
  });
  const decided = await condition(() => decision !== undefined, input.approvalTimeoutMs);
  awaiting = false;
  if (!decided || !decision) {
    phase('timed-out');
    await tell(
      `:hourglass: restore of ${target} from ${manifest.id} cancelled: no approval within ${Math.round(input.approvalTimeoutMs / 60000)} min`,
    );
    phase('timed-out');
    return result('timed-out');
  }
  const approval: ApprovalRecord = decision;
  status = { ...status, approval };
  if (approval.decision === 'reject') {
    await tell(`:no_entry: restore of ${target} from ${manifest.id} rejected by ${approval.by}`, [
      { title: 'Comment', value: approval.comment ?? '—' },
    ]);
    phase('rejected');
    return result('rejected');
  }

  // Restore into the shadow, verify, cut over. Before cut-over, any failure leaves the target as it was.
  let cutover: Awaited<ReturnType<RestoreActivities['swapInRestoredDatabase']>> | undefined;
  let statisticsRestored = false;
  try {
    phase('restoring');
    ({ statisticsRestored } = await streaming(`restore ${manifest.id} into ${shadow}`).restoreBackupInto({
      backupId: manifest.id,
      database: shadow,
      jobs: input.jobs,
    }));
    phase('verifying');
    await streaming(`verify ${shadow} against the manifest of ${manifest.id}`).verifyRestoredDatabase({
      database: shadow,
      backupId: manifest.id,
      extensions: archive.extensions,
    });
    phase('cutting-over');
    cutover = await short(`swap ${shadow} in for ${target}`).swapInRestoredDatabase({
      target,
      shadow,
      preRestore,
      workflowId: info.workflowId,
      keepUntil: new Date(Date.now() + input.keepDays * 86_400_000).toISOString(),
    });
  } catch (err) {
    const cancelled = isCancellation(err);
    phase('cleaning-up', { error: rootMessage(err) });
    await CancellationScope.nonCancellable(async () => {
      try {
        await short(`drop shadow ${shadow}`).dropRestoreDatabase({ name: shadow });
      } catch (dropErr) {
        log.error('could not drop the shadow database; `dbops db cleanup` removes it', {
          shadow,
          error: rootMessage(dropErr),
        });
      }
      await tell(
        `:x: restore of ${target} from ${manifest.id} ${cancelled ? 'cancelled' : 'failed'}; ${target} is unchanged`,
        [
          { title: 'Approved by', value: approval.by },
          { title: 'Error', value: rootMessage(err).slice(0, 1500) },
        ],
      );
    });
    phase('failed', { error: rootMessage(err) });
    throw err;
  }

  // An archive with planner statistics (PostgreSQL 18+) brought them along: no ANALYZE needed.
  if (!statisticsRestored) {
    phase('analyzing');
    try {
      await streaming(`ANALYZE ${target}`).analyzeDatabase({ database: target });
    } catch (err) {
      // The restore is done; stale statistics only slow queries until autovacuum analyzes.
      log.warn('ANALYZE after restore failed', { target, error: rootMessage(err) });
    }
  }
  const done = result('restored', {
    preRestoreDatabase: cutover.targetExisted ? preRestore : null,
    cutoverMs: cutover.cutoverMs,
  });
  await tell(`:white_check_mark: ${target} restored from ${manifest.id}`, [
    { title: 'Approved by', value: `${approval.by}${approval.comment ? ` (${approval.comment})` : ''}` },
    { title: 'Cut-over window', value: `${cutover.cutoverMs} ms` },
    {
      title: 'Old database kept as',
      value: cutover.targetExisted ? `${preRestore} (${input.keepDays} days)` : '—',
    },
  ]);
  phase('done');
  return { ...done, durationMs: Date.now() - started };
}
