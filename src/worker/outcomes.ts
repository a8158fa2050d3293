import type { InjectedSinks } from '@temporalio/worker';
import { Counter, Gauge, Histogram } from 'prom-client';
import { parseBackupId } from '../../common/backup';
import {
  INVALID_DATABASE,
  OPERATIONS,
  OUTCOMES,
  REASONS,
  UNKNOWN_DATABASE,
  type OperationOutcome,
  type OutcomeSinks,
} from '../../workflows/outcomes';
import { recordBackupSuccess, recordBackupVerified, registry } from './metrics';

/**
 * The outcome of every dbops operation, as Prometheus series: the workflows report how each run
 * ended through the `dbopsOutcomes` sink (workflows/outcomes.ts), registered on the main worker by
 * createWorker. Alert rules (deploy/) are written against these names and labels.
 */

const DATABASE_HELP = `database: the PostgreSQL database (backup, verify, partition_maintenance), the restore or rollback target, the Milvus collection (milvus_*), the base backup's kind (basebackup: full|incremental) or the WAL archiver's slot (wal_archiver); "${INVALID_DATABASE}" for a name that is not valid, "${UNKNOWN_DATABASE}" when the input named none`;

const runs = new Counter({
  name: 'dbops_operation_runs_total',
  help: [
    'Finished runs of dbops operations.',
    `operation: ${OPERATIONS.join('|')}.`,
    `outcome: ${OUTCOMES.join('|')} (restore: restored is succeeded; rejected, timed_out (no decision before the approval deadline) and dry_run are restore results; verify: succeeded is a passed verification).`,
    `reason: none unless failed, else the failure type: ${REASONS.filter((r) => r !== 'none').join('|')}` +
      ' (verify: VerificationFailed = the backup failed its test restore, Unavailable = could not verify; TimedOut also for a Temporal timeout; Unknown = an untyped error).',
    `${DATABASE_HELP}.`,
    'A run ended by a workflow execution timeout or a termination runs no workflow code and is not counted.',
  ].join(' '),
  labelNames: ['operation', 'database', 'outcome', 'reason'] as const,
  registers: [registry],
});

const lastSuccess = new Gauge({
  name: 'dbops_operation_last_success_timestamp_seconds',
  help: `Unix time the last succeeded run of the operation on the database ended, as this worker saw it since it started; ${DATABASE_HELP}`,
  labelNames: ['operation', 'database'] as const,
  registers: [registry],
});

const HOUR = 3600;
const duration = new Histogram({
  name: 'dbops_operation_duration_seconds',
  help: 'Duration of finished runs, from the run start to its end (a restore includes its approval wait; a verify its retry rounds)',
  labelNames: ['operation', 'outcome'] as const,
  buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR, 12 * HOUR, 24 * HOUR],
  registers: [registry],
});

/** Turns one reported outcome into the series (and, for backups and verifications, the backup gauges). */
export function recordOutcome(o: OperationOutcome): void {
  const { operation, database, outcome } = o;
  runs.inc({ operation, database, outcome, reason: o.reason });
  duration.observe({ operation, outcome }, o.durationMs / 1000);
  if (outcome !== 'succeeded') return;
  const finishedAt = new Date(o.finishedAtMs);
  lastSuccess.set({ operation, database }, finishedAt.getTime() / 1000);
  if (!o.backup) return;
  const backup = parseBackupId(o.backup.id);
  if (operation === 'backup') {
    recordBackupSuccess({
      database: backup.database,
      takenAt: backup.time,
      finishedAt,
      sizeBytes: o.backup.sizeBytes ?? 0,
      durationSeconds: (o.backup.durationMs ?? o.durationMs) / 1000,
    });
  } else if (operation === 'verify') {
    recordBackupVerified(backup.database, backup.time);
  }
}

/** The worker's side of the `dbopsOutcomes` sink; never called while a history replays. */
export const outcomeSinks: InjectedSinks<OutcomeSinks> = {
  dbopsOutcomes: { report: { fn: (_info, outcome) => recordOutcome(outcome), callDuringReplay: false } },
};

/** Forgets the operation series (tests). */
export function resetOutcomeMetrics(): void {
  runs.reset();
  lastSuccess.reset();
  duration.reset();
}
