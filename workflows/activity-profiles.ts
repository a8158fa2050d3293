import { ActivityCancellationType, proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import { NON_RETRYABLE_FAILURE_TYPES } from '../common/failures';

/**
 * The only activity options in dbops. Pick a profile by the shape of the work:
 * - short: a query or an API call, seconds long, retried quickly.
 * - streaming: long work that moves data (dump, upload, restore, copy); heartbeats progress,
 *   so a dead worker is noticed within the heartbeat timeout and the activity retried elsewhere.
 * - notify: best effort, few attempts, never blocks the operation for long.
 * - cutover: a restore's swap (and its rollback): seconds, with the target blocked meanwhile.
 *   Heartbeats, so a worker dying in it is noticed in seconds and the retry lets connections in
 *   again; a cancel waits for the attempt to end, so the workflow reports what the swap did.
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
  cutover: {
    startToCloseTimeout: '2 minutes',
    heartbeatTimeout: '10 seconds',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '10 seconds',
      maximumAttempts: 10,
      nonRetryableErrorTypes: [...NON_RETRYABLE_FAILURE_TYPES],
    },
  },
  /**
   * archiver: the WAL archiver's run (an hour of pg_receivewal, then the next): heartbeats, so a
   * dead worker is noticed in seconds and the run restarted elsewhere (the slots keep the WAL);
   * retried without limit (a server restart must not end archiving; each failed attempt shows in
   * the Web UI and the lag gauges keep growing); a cancel waits for it to store what it received.
   */
  archiver: {
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: '15 seconds',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '2 seconds',
      backoffCoefficient: 2,
      maximumInterval: '1 minute',
      // No maximumAttempts: unlimited.
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
