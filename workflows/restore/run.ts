import {
  ActivityCancellationType,
  log,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { NotifyActivities } from '../../activities/notify';
import type { RestoreActivities } from '../../activities/postgres';
import { rootMessage } from '../../common/failures';
import { workflowRunUrl } from '../../common/links';
import type { ApprovalRecord, EffectivePolicy, RestorePolicy } from '../../common/approvals';
import { restoreDetails } from '../../common/restore-details';
import { DBOPS_PHASE } from '../../common/search-attributes';
import type { RestorePlan, RestoreResult, RestoreStatus, RestoreWorkflowInput } from '../../common/restore';
import { activitiesWith } from '../activity-profiles';
import { restoreStatusQuery } from '../restore-messages';

/** What the starter adds from its configuration (not secrets): a workflow cannot read the worker's settings. */
export interface RestoreWorkflowSettings {
  /** Temporal Web UI base, for the run's link in the result and in Slack; without it there is none. */
  readonly uiUrl?: string;
}

export type RestoreInput = RestoreWorkflowInput & RestoreWorkflowSettings;

/** The plan the approver sees, and its hash (what an approval names). */
export interface Planned {
  readonly plan: RestorePlan;
  readonly hash: string;
}

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

/** One restore's state: its status (answered by restoreStatusQuery), activities, link and notifications. */
export class RestoreRun {
  readonly info = workflowInfo();
  readonly started = Date.now();
  readonly link: string | null;
  status: RestoreStatus;
  private effective: EffectivePolicy | undefined;
  private workerPolicy: RestorePolicy | undefined;
  private readonly retry: { retry?: { maximumAttempts: number } };

  constructor(readonly input: RestoreInput) {
    this.retry = input.maximumAttempts ? { retry: { maximumAttempts: input.maximumAttempts } } : {};
    this.link = input.uiUrl
      ? workflowRunUrl(input.uiUrl, this.info.namespace, this.info.workflowId, this.info.runId)
      : null;
    this.status = {
      phase: 'resolving',
      step: 1,
      steps: PHASES_WITH_STEPS.length,
      backupId: null,
      target: input.target ?? null,
      requestedBy: input.requestedBy,
      requester: null,
      policy: null,
      plan: null,
      planHash: null,
      waitingSince: null,
      approvalDeadline: null,
      approval: null,
      error: null,
    };
    setHandler(restoreStatusQuery, () => this.status);
  }

  /** The worker's policy as applied to this run (applyPolicy sets it before anything reads it). */
  get policy(): EffectivePolicy {
    if (!this.effective) throw new Error('restore policy read before it was applied');
    return this.effective;
  }

  /** The worker's own settings (its database list for the target guard). */
  get worker(): RestorePolicy {
    if (!this.workerPolicy) throw new Error('restore policy read before it was applied');
    return this.workerPolicy;
  }

  setPolicy(worker: RestorePolicy, effective: EffectivePolicy): void {
    this.workerPolicy = worker;
    this.effective = effective;
    this.status = { ...this.status, policy: effective };
    this.publish();
  }

  phase(p: RestoreStatus['phase'], extra: Partial<RestoreStatus> = {}): void {
    const idx = PHASES_WITH_STEPS.indexOf(p);
    const changed = p !== this.status.phase;
    this.status = { ...this.status, ...extra, phase: p, step: idx >= 0 ? idx + 1 : this.status.step };
    // Only when the starter set DbopsPhase: a namespace without it would fail every workflow task
    // on the upsert, while a start naming it fails at once with the server's reason.
    if (changed && this.info.typedSearchAttributes.get(DBOPS_PHASE) !== undefined) {
      upsertSearchAttributes([{ key: DBOPS_PHASE, value: p }]);
    }
    this.publish();
  }

  /** The Web UI's view of the run: phase, plan and hash, deadline, the commands to decide. */
  publish(): void {
    setCurrentDetails(restoreDetails(this.status, this.info.workflowId));
  }

  short<A extends object = RestoreActivities>(summary: string) {
    return activitiesWith<A>('short', { summary, ...this.retry });
  }

  streaming<A extends object = RestoreActivities>(summary: string) {
    return activitiesWith<A>('streaming', {
      summary,
      ...this.retry,
      ...(this.input.heartbeatTimeoutMs ? { heartbeatTimeout: this.input.heartbeatTimeoutMs } : {}),
      // The activity kills pg_restore before the workflow drops the shadow.
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    });
  }

  /** The cut-over and its settling (cutover profile), with a test's shorter heartbeat timeout. */
  cutover(summary: string) {
    return activitiesWith<RestoreActivities>('cutover', {
      summary,
      ...this.retry,
      ...(this.input.heartbeatTimeoutMs ? { heartbeatTimeout: this.input.heartbeatTimeoutMs } : {}),
    });
  }

  result(
    planned: Planned,
    outcome: RestoreResult['outcome'],
    approval: ApprovalRecord | undefined,
    extra: Partial<RestoreResult> = {},
  ): RestoreResult {
    return {
      outcome,
      plan: planned.plan,
      planHash: planned.hash,
      approval: approval ?? null,
      target: planned.plan.target,
      preRestoreDatabase: null,
      cutoverMs: null,
      durationMs: Date.now() - this.started,
      link: this.link,
      ...extra,
    };
  }

  /** Best effort: a Slack failure is logged, never fails the restore. */
  async tell(text: string, fields: { title: string; value: string }[] = []): Promise<void> {
    this.phase('notifying');
    const notify = activitiesWith<NotifyActivities>('notify', { summary: 'Slack: restore outcome' });
    try {
      await notify.notifySlack({
        text,
        fields,
        link: this.link ? { label: 'Open the run in the Temporal Web UI', url: this.link } : undefined,
      });
    } catch (err) {
      log.warn('Slack notification failed', { error: rootMessage(err) });
    }
  }
}
