/**
 * Fixture workflow for bench/worker-versioning.ts: the shape of a restore that waits for approval
 * (an update, like restoreApprovalUpdate, or a signal), then runs one activity. It reports which
 * worker build ran the final workflow task and which ran the activity, so the bench can see where
 * a waiting workflow went after a deploy.
 */
import {
  condition,
  defineSignal,
  defineUpdate,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';

export const approveUpdate = defineUpdate<string>('approve');
export const approveSignal = defineSignal('approveSignal');

export interface VersioningActivities {
  /** Returns the build id of the worker that ran it. */
  step(): Promise<string>;
}

const { step } = proxyActivities<VersioningActivities>({ startToCloseTimeout: '30s' });

export interface ApprovalResult {
  /** Build id of the worker that completed the workflow task after approval ('unversioned' if none). */
  workflowTaskBuild: string;
  /** Build id of the worker that ran the activity. */
  activityBuild: string;
}

export async function waitForApproval(): Promise<ApprovalResult> {
  let approved = false;
  setHandler(approveUpdate, () => {
    approved = true;
    return workflowInfo().currentDeploymentVersion?.buildId ?? 'unversioned';
  });
  setHandler(approveSignal, () => {
    approved = true;
  });
  await condition(() => approved);
  const workflowTaskBuild = workflowInfo().currentDeploymentVersion?.buildId ?? 'unversioned';
  return { workflowTaskBuild, activityBuild: await step() };
}
