import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import { NON_RETRYABLE_FAILURE_TYPES } from '../common/failures';

/**
 * The only activity options in dbops. Pick a profile by the shape of the work:
 * - short: a query or an API call, seconds long, retried quickly.
 * - streaming: long work that moves data (dump, upload, restore, copy); heartbeats progress,
 *   so a dead worker is noticed within the heartbeat timeout and the activity retried elsewhere.
 * - notify: best effort, few attempts, never blocks the operation for long.
 */
export const activityProfiles = {
  short: {
    startToCloseTimeout: '2 minutes',
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '30 seconds',
      maximumAttempts: 5,
      nonRetryableErrorTypes: [...NON_RETRYABLE_FAILURE_TYPES],
    },
  },
  streaming: {
    startToCloseTimeout: '6 hours',
    heartbeatTimeout: '1 minute',
    retry: {
      initialInterval: '5 seconds',
      backoffCoefficient: 2,
      maximumInterval: '2 minutes',
      maximumAttempts: 3,
      nonRetryableErrorTypes: [...NON_RETRYABLE_FAILURE_TYPES],
    },
  },
  notify: {
    startToCloseTimeout: '30 seconds',
    retry: {
      initialInterval: '2 seconds',
      maximumAttempts: 3,
      nonRetryableErrorTypes: [...NON_RETRYABLE_FAILURE_TYPES],
    },
  },
} satisfies Record<string, ActivityOptions>;

export type ActivityProfile = keyof typeof activityProfiles;

/** proxyActivities with a named profile; `overrides` only for per-call summaries or a tighter retry. */
export function activitiesWith<A extends object>(
  profile: ActivityProfile,
  overrides: Partial<ActivityOptions> = {},
) {
  const base = activityProfiles[profile];
  return proxyActivities<A>({ ...base, ...overrides, retry: { ...base.retry, ...overrides.retry } });
}
