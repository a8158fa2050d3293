/**
 * Workflow interceptor module (in the workflow bundle, see src/worker/bundle.ts): reports how every
 * dbops operation ends through the `dbopsOutcomes` sink, which the worker turns into Prometheus
 * series (src/worker/outcomes.ts). It adds no command, timer or activity, so every recorded history
 * replays unchanged; the sink is not called during replay, so a replayed run is not counted again.
 */
import {
  isCancellation,
  log,
  proxySinks,
  TemporalFailure,
  TimeoutFailure,
  workflowInfo,
  type Next,
  type Sinks,
  type WorkflowExecuteInput,
  type WorkflowInboundCallsInterceptor,
  type WorkflowInterceptorsFactory,
} from '@temporalio/workflow';
import { type BackupWorkflowInput, type BackupWorkflowResult, parseBackupId } from '../common/backup';
import { FailureType, failureTypeOf } from '../common/failures';
import { isValidDatabaseName } from '../common/names';
import type {
  RestoreResult,
  RestoreWorkflowInput,
  RollbackInput,
  VerifyWorkflowInput,
  VerifyWorkflowResult,
} from '../common/restore';
import type { BaseBackupWorkflowInput, BaseBackupWorkflowResult } from '../common/basebackup';
import type { PointInTimeRestoreInput } from '../common/pitr';
import type { MilvusMaintenanceInput } from './milvus-maintenance';
import type { MilvusRepairInput } from './milvus-repair';
import type { PartitionMaintenanceInput } from './partition-maintenance';
import type { WalArchiverInput } from './wal-archiver';

export const OPERATIONS = [
  'backup',
  'verify',
  'restore',
  'rollback',
  'milvus_maintenance',
  'milvus_repair',
  'partition_maintenance',
  'basebackup',
  'wal_archiver',
] as const;
export type Operation = (typeof OPERATIONS)[number];

/** How a run ended. `rejected`, `timed_out` (approval wait) and `dry_run` are restore results. */
export const OUTCOMES = ['succeeded', 'failed', 'cancelled', 'rejected', 'timed_out', 'dry_run'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/**
 * Why a run failed: the FailureType of its failure chain (common/failures.ts); `TimedOut` also for a
 * Temporal timeout (an activity out of attempts on its timeout), `Unknown` for an untyped error;
 * `none` for every outcome but failed. A verification that ends "could not verify" fails
 * `Unavailable`; a backup that failed its verification fails `VerificationFailed`.
 */
export const REASONS = ['none', ...Object.values(FailureType), 'Unknown'] as const;
export type Reason = (typeof REASONS)[number];

/** Label for a run whose input named no database or collection. */
export const UNKNOWN_DATABASE = 'unknown';
/** Label for a name that is not a valid name (hostile or mistyped input): never the raw text. */
export const INVALID_DATABASE = 'invalid';

/** One finished run, as the sink carries it to the worker (plain data: it is cloned). */
export interface OperationOutcome {
  readonly operation: Operation;
  readonly workflowType: string;
  /** PostgreSQL database (backup, verify, partitions), restore or rollback target, Milvus collection. */
  readonly database: string;
  readonly outcome: Outcome;
  readonly reason: Reason;
  /** From the run's start to its end, in workflow time. */
  readonly durationMs: number;
  /** When it ended, in workflow time (ms since the epoch). */
  readonly finishedAtMs: number;
  /** The backup a succeeded backup made (with its size and duration) or a succeeded verify proved. */
  readonly backup?: { readonly id: string; readonly sizeBytes?: number; readonly durationMs?: number };
}

export interface OutcomeSinks extends Sinks {
  dbopsOutcomes: { report(outcome: OperationOutcome): void };
}

/** How one workflow type's input and result map to an outcome's labels. */
interface OperationSpec<I, R> {
  readonly operation: Operation;
  /** The database label's name, from the result when the run succeeded, else from the input. */
  database(input: Partial<I>, result?: R): string | undefined;
  /** Outcome of a run that returned (default succeeded). */
  outcome?(result: R): Outcome;
  /** Reason when `outcome` says a run that returned failed. */
  readonly failedReason?: Reason;
  backup?(result: R): OperationOutcome['backup'];
}
const spec = <I, R>(s: OperationSpec<I, R>) => s as OperationSpec<unknown, unknown>;

/** The database a backup id names; `notAnId` for any other value. */
function backupDatabase(id: unknown, notAnId: string | undefined): string | undefined {
  try {
    return typeof id === 'string' ? parseBackupId(id).database : undefined;
  } catch {
    return notAnId;
  }
}

const RESTORE_OUTCOMES: Record<RestoreResult['outcome'], Outcome> = {
  restored: 'succeeded',
  'dry-run': 'dry_run',
  rejected: 'rejected',
  'timed-out': 'timed_out',
};

/**
 * The operations, by workflow type. pingWorkflow and targetLockWorkflow (internal: a lock another
 * workflow holds) are not operations and are not reported.
 */
const SPECS: ReadonlyMap<string, OperationSpec<unknown, unknown>> = new Map(
  Object.entries({
    backupWorkflow: spec<BackupWorkflowInput, BackupWorkflowResult>({
      operation: 'backup',
      database: (i, r) => r?.database ?? i.database,
      backup: (r) => ({ id: r.backupId, sizeBytes: r.sizeBytes, durationMs: r.durationMs }),
    }),
    verifyBackupWorkflow: spec<VerifyWorkflowInput, VerifyWorkflowResult>({
      operation: 'verify',
      database: (i) => backupDatabase(i.backupId, INVALID_DATABASE),
      // A verification returns only when the backup passed (a failed verdict fails the run).
      outcome: (r) => (r.status === 'passed' ? 'succeeded' : 'failed'),
      failedReason: FailureType.VerificationFailed,
      backup: (r) => (r.status === 'passed' ? { id: r.backupId } : undefined),
    }),
    restoreWorkflow: spec<RestoreWorkflowInput, RestoreResult>({
      operation: 'restore',
      // `latest` or `latest-verified` without a database or target names none (unknown).
      database: (i, r) => r?.target ?? i.target ?? i.database ?? backupDatabase(i.backup, undefined),
      outcome: (r) => RESTORE_OUTCOMES[r.outcome],
    }),
    // A point-in-time restore is a restore (the same approval, swap and results, the same alerts).
    pointInTimeRestoreWorkflow: spec<PointInTimeRestoreInput, RestoreResult>({
      operation: 'restore',
      database: (i, r) => r?.target ?? i.target ?? i.database,
      outcome: (r) => RESTORE_OUTCOMES[r.outcome],
    }),
    restoreRollbackWorkflow: spec<RollbackInput, unknown>({
      operation: 'rollback',
      database: (i) => i.target,
    }),
    milvusMaintenanceWorkflow: spec<MilvusMaintenanceInput, unknown>({
      operation: 'milvus_maintenance',
      database: (i) => i.collection,
    }),
    milvusRepairWorkflow: spec<MilvusRepairInput, unknown>({
      operation: 'milvus_repair',
      database: (i) => i.collection,
    }),
    partitionMaintenanceWorkflow: spec<PartitionMaintenanceInput, unknown>({
      operation: 'partition_maintenance',
      database: (i) => i.database,
    }),
    // Base backups and the WAL archiver are of the whole server (one per deployment), not of a
    // database: a base backup's label is its kind (the weekly full and the daily incremental
    // schedules fail and succeed apart), the archiver's its replication slot (DBOPS_WAL_SLOT). A
    // continue-as-new ends no archiver run (no Temporal failure): only a stop, a cancel or a failure count.
    baseBackupWorkflow: spec<BaseBackupWorkflowInput, BaseBackupWorkflowResult>({
      operation: 'basebackup',
      database: (i, r) => r?.kind ?? i.kind,
    }),
    walArchiverWorkflow: spec<WalArchiverInput, unknown>({
      operation: 'wal_archiver',
      database: (i) => i.slot,
    }),
  }),
);

export function isReportedWorkflowType(workflowType: string): boolean {
  return SPECS.has(workflowType);
}

function databaseLabel(name: unknown): string {
  if (name === undefined || name === null || name === '') return UNKNOWN_DATABASE;
  return typeof name === 'string' && isValidDatabaseName(name) ? name : INVALID_DATABASE;
}

const FAILURE_TYPES: readonly string[] = Object.values(FailureType);

/** The failure's reason: its FailureType where it has one of dbops' types. */
export function failureReason(err: unknown): Reason {
  const type = failureTypeOf(err);
  if (type !== undefined && FAILURE_TYPES.includes(type)) return type as FailureType;
  for (let e: unknown = err, depth = 0; e && depth < 10; depth++) {
    if (e instanceof TimeoutFailure) return FailureType.TimedOut;
    e = (e as { cause?: unknown }).cause;
  }
  return 'Unknown';
}

/** How a run ended: its value, or the error it threw. */
export type RunEnd = { readonly result: unknown } | { readonly error: unknown };

/**
 * The outcome to report for a run of `workflowType` that started at `startedMs` and ended at
 * `finishedMs` with `end`; undefined when the type is not an operation, or when the error does not
 * end the run (only a Temporal failure or a cancellation fails a workflow: any other error fails the
 * workflow task, which Temporal retries, so it is no outcome yet).
 */
export function describeOutcome(
  workflowType: string,
  args: readonly unknown[],
  end: RunEnd,
  startedMs: number,
  finishedMs: number,
): OperationOutcome | undefined {
  const s = SPECS.get(workflowType);
  if (!s) return undefined;
  const input: object = typeof args[0] === 'object' && args[0] !== null ? args[0] : {};
  const common = {
    operation: s.operation,
    workflowType,
    durationMs: Math.max(0, finishedMs - startedMs),
    finishedAtMs: finishedMs,
  };
  if ('error' in end) {
    const { error } = end;
    const database = databaseLabel(s.database(input));
    if (isCancellation(error)) return { ...common, database, outcome: 'cancelled', reason: 'none' };
    if (!(error instanceof TemporalFailure)) return undefined;
    return { ...common, database, outcome: 'failed', reason: failureReason(error) };
  }
  const outcome = s.outcome?.(end.result) ?? 'succeeded';
  const backup = outcome === 'succeeded' ? s.backup?.(end.result) : undefined;
  return {
    ...common,
    database: databaseLabel(s.database(input, end.result)),
    outcome,
    reason: outcome === 'failed' ? (s.failedReason ?? 'Unknown') : 'none',
    ...(backup ? { backup } : {}),
  };
}

const { dbopsOutcomes } = proxySinks<OutcomeSinks>();

class OutcomeInterceptor implements WorkflowInboundCallsInterceptor {
  async execute(
    input: WorkflowExecuteInput,
    next: Next<WorkflowInboundCallsInterceptor, 'execute'>,
  ): Promise<unknown> {
    const { workflowType, runStartTime } = workflowInfo();
    if (!isReportedWorkflowType(workflowType)) return next(input);
    const report = (end: RunEnd) => {
      // A replay (a query on a closed run, a replay worker) ends as the recorded run did, which was
      // counted then. The SDK drops such sink calls anyway; not making them also spares replay
      // workers without this sink an "unregistered sink" error.
      if (workflowInfo().unsafe.isReplaying) return;
      // Reporting must never change how the run ends: a mapping error is logged, not thrown.
      try {
        const outcome = describeOutcome(workflowType, input.args, end, runStartTime.getTime(), Date.now());
        if (outcome) dbopsOutcomes.report(outcome);
      } catch (err) {
        log.warn('could not report the outcome of this run to the worker metrics', { error: String(err) });
      }
    };
    try {
      const result = await next(input);
      report({ result });
      return result;
    } catch (error) {
      report({ error });
      throw error;
    }
  }
}

export const interceptors: WorkflowInterceptorsFactory = () => ({ inbound: [new OutcomeInterceptor()] });
