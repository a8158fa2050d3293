import { ApplicationFailure } from '@temporalio/common';

/**
 * The one list of failure types used by activities, workflows and the CLI.
 * Non-retryable types are declared in every retry policy (see workflows/activity-profiles.ts):
 * retrying them cannot succeed, so the workflow fails fast with the message.
 */
export const FailureType = {
  /** Bad input from a user or a caller: unknown database, bad backup id, hostile name. */
  InvalidInput: 'InvalidInput',
  /** Something named does not exist: backup id, database, collection, bucket. */
  NotFound: 'NotFound',
  /** Configuration cannot work: missing binary, unwritable folder, version mismatch. */
  Misconfigured: 'Misconfigured',
  /** Stored data is not what its manifest promises: size, SHA-256, truncated archive. */
  IntegrityCheckFailed: 'IntegrityCheckFailed',
  /** A restored database does not match the manifest of its backup. */
  VerificationFailed: 'VerificationFailed',
  /** A migration file or history does not validate. */
  MigrationInvalid: 'MigrationInvalid',
  /** A migration's SQL failed; recorded in history, needs a fix and a rerun. */
  MigrationFailed: 'MigrationFailed',
  /** An operation was refused by a safety rule (retention, approval, four-eyes). */
  Refused: 'Refused',
  /** The approval for a restore was rejected or timed out. */
  ApprovalRejected: 'ApprovalRejected',
  /** A child process (pg_dump, pg_restore, psql, zstd) exited non-zero: may be transient. */
  ProcessFailed: 'ProcessFailed',
  /** A remote service (PostgreSQL, Milvus, S3, Slack) could not be reached: transient. */
  Unavailable: 'Unavailable',
  /** A deadline inside the operation passed (compaction wait, lock wait): transient. */
  TimedOut: 'TimedOut',
} as const;

export type FailureType = (typeof FailureType)[keyof typeof FailureType];

export const NON_RETRYABLE_FAILURE_TYPES: readonly FailureType[] = [
  FailureType.InvalidInput,
  FailureType.NotFound,
  FailureType.Misconfigured,
  FailureType.IntegrityCheckFailed,
  FailureType.VerificationFailed,
  FailureType.MigrationInvalid,
  FailureType.MigrationFailed,
  FailureType.Refused,
  FailureType.ApprovalRejected,
];

export function isRetryableFailureType(type: string | undefined | null): boolean {
  return !NON_RETRYABLE_FAILURE_TYPES.includes(type as FailureType);
}

/** Creates a typed failure; non-retryable types are marked so even outside a retry policy. */
export function failure(type: FailureType, message: string, details?: unknown): ApplicationFailure {
  return ApplicationFailure.create({
    type,
    message,
    nonRetryable: !isRetryableFailureType(type),
    details: details === undefined ? undefined : [details],
  });
}

/** Finds the failure type in an error or its causes (ApplicationFailure nested in Activity/ChildWorkflow failures). */
export function failureTypeOf(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; current && depth < 10; depth++) {
    if (current instanceof ApplicationFailure && current.type) return current.type;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The innermost message of an error chain: what actually went wrong, for logs and CLI output. */
export function rootMessage(err: unknown): string {
  let current: unknown = err;
  let message = err instanceof Error ? err.message : String(err);
  for (let depth = 0; current && depth < 10; depth++) {
    if (current instanceof Error && current.message) message = current.message;
    current = (current as { cause?: unknown }).cause;
  }
  return message;
}
