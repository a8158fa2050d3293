import {
  ActivityFailure,
  ApplicationFailure,
  CancelledFailure,
  ChildWorkflowFailure,
  RetryState,
  TimeoutFailure,
  TimeoutType,
} from '@temporalio/common';
import { afterEach, describe, expect, it } from 'vitest';
import { makeBackupId } from '../../common/backup';
import { FailureType, failure } from '../../common/failures';
import type { RestoreResult, VerifyWorkflowResult } from '../../common/restore';
import { registry, resetBackupMetrics } from '../../src/worker/metrics';
import { recordOutcome, resetOutcomeMetrics } from '../../src/worker/outcomes';
import { describeOutcome, type RunEnd } from '../../workflows/outcomes';
import { sampleValue } from '../helpers/prometheus';

const START = Date.UTC(2026, 11, 4, 3, 0, 0);
const END = START + 90_000;
const describe_ = (type: string, input: unknown, end: RunEnd) =>
  describeOutcome(type, [input], end, START, END);
/** How an activity's typed failure reaches the workflow: wrapped in an ActivityFailure. */
const inActivity = (cause: Error) =>
  new ActivityFailure('activity failed', 'dumpDatabase', '1', RetryState.NON_RETRYABLE_FAILURE, 'w', cause);

const backupId = makeBackupId('recsys', new Date(START));
const backupResult = {
  outcome: 'succeeded',
  backupId,
  database: 'recsys',
  sizeBytes: 1234,
  durationMs: 80_000,
};

afterEach(() => {
  resetOutcomeMetrics();
  resetBackupMetrics();
});

describe('how a run ends maps to an outcome', () => {
  it('a backup that returned succeeded, with its backup; one that failed has the failure type', () => {
    expect(describe_('backupWorkflow', { database: 'recsys' }, { result: backupResult })).toEqual({
      operation: 'backup',
      workflowType: 'backupWorkflow',
      database: 'recsys',
      outcome: 'succeeded',
      reason: 'none',
      durationMs: 90_000,
      finishedAtMs: END,
      backup: { id: backupId, sizeBytes: 1234, durationMs: 80_000 },
    });
    const notFound = inActivity(failure(FailureType.NotFound, 'database nosuch does not exist'));
    expect(describe_('backupWorkflow', { database: 'nosuch' }, { error: notFound })).toMatchObject({
      database: 'nosuch',
      outcome: 'failed',
      reason: 'NotFound',
    });
  });

  it('cancelled, timed out, untyped; an error that is no Temporal failure ends no run', () => {
    const input = { database: 'recsys' };
    const cancelled = inActivity(new CancelledFailure('cancelled'));
    expect(describe_('backupWorkflow', input, { error: cancelled })).toMatchObject({
      outcome: 'cancelled',
      reason: 'none',
    });
    expect(describe_('backupWorkflow', input, { error: new CancelledFailure('x') })).toMatchObject({
      outcome: 'cancelled',
    });
    const timedOut = inActivity(new TimeoutFailure('timed out', undefined, TimeoutType.START_TO_CLOSE));
    expect(describe_('backupWorkflow', input, { error: timedOut })).toMatchObject({
      outcome: 'failed',
      reason: 'TimedOut',
    });
    const untyped = inActivity(ApplicationFailure.create({ type: 'TypeError', message: 'x is undefined' }));
    expect(describe_('backupWorkflow', input, { error: untyped })).toMatchObject({ reason: 'Unknown' });
    // A TypeError in workflow code fails the workflow task, which Temporal retries: no outcome yet.
    expect(describe_('backupWorkflow', input, { error: new TypeError('boom') })).toBeUndefined();
  });

  it('verify: passed, failed verdict, could not verify; the database comes from the backup id', () => {
    const passed: VerifyWorkflowResult = {
      backupId,
      status: 'passed',
      detail: 'ok',
      scratchDatabase: 'recsys__verify_20261204030000',
      durationMs: 1,
    };
    expect(describe_('verifyBackupWorkflow', { backupId }, { result: passed })).toMatchObject({
      operation: 'verify',
      database: 'recsys',
      outcome: 'succeeded',
      reason: 'none',
      backup: { id: backupId },
    });
    const verdict = failure(FailureType.VerificationFailed, 'table users has 1 row, the backup had 2');
    expect(describe_('verifyBackupWorkflow', { backupId }, { error: verdict })).toMatchObject({
      outcome: 'failed',
      reason: 'VerificationFailed',
    });
    const couldNot = failure(FailureType.Unavailable, `could not verify backup ${backupId}`, {
      ...passed,
      status: 'could-not-verify',
    });
    expect(describe_('verifyBackupWorkflow', { backupId }, { error: couldNot })).toMatchObject({
      outcome: 'failed',
      reason: 'Unavailable',
    });
    const bad = failure(FailureType.InvalidInput, 'backup id "../x" is not valid');
    expect(describe_('verifyBackupWorkflow', { backupId: '../x' }, { error: bad })).toMatchObject({
      database: 'invalid',
      reason: 'InvalidInput',
    });
  });

  it('restore: each result outcome; the target from the result, the input or the backup id', () => {
    const result = (outcome: RestoreResult['outcome']) => ({ result: { outcome, target: 'shop' } });
    const input = { backup: backupId, requestedBy: 'ann', jobs: 2 };
    const outcomes = (['restored', 'dry-run', 'rejected', 'timed-out'] as const).map((o) =>
      describe_('restoreWorkflow', input, result(o))!,
    );
    expect(outcomes.map((o) => [o.database, o.outcome, o.reason])).toEqual([
      ['shop', 'succeeded', 'none'],
      ['shop', 'dry_run', 'none'],
      ['shop', 'rejected', 'none'],
      ['shop', 'timed_out', 'none'],
    ]);
    const refused = failure(FailureType.Refused, 'one restore per target');
    expect(describe_('restoreWorkflow', { ...input, target: 'other' }, { error: refused })).toMatchObject({
      operation: 'restore',
      database: 'other',
      outcome: 'failed',
      reason: 'Refused',
    });
    expect(describe_('restoreWorkflow', input, { error: refused })?.database).toBe('recsys');
    expect(describe_('restoreWorkflow', { ...input, backup: 'latest' }, { error: refused })?.database).toBe(
      'unknown',
    );
  });

  it('rollback, Milvus and partitions name their target, collection and database; hostile names are not labels', () => {
    const ok = { result: {} };
    const label = (type: string, input: unknown) => {
      const o = describe_(type, input, ok)!;
      return `${o.operation}:${o.database}`;
    };
    expect(label('restoreRollbackWorkflow', { target: 'shop', preRestoreDatabase: 'x' })).toBe(
      'rollback:shop',
    );
    expect(label('milvusMaintenanceWorkflow', { collection: 'item_embeddings' })).toBe(
      'milvus_maintenance:item_embeddings',
    );
    expect(label('milvusRepairWorkflow', { collection: 'user_embeddings', database: 'recsys' })).toBe(
      'milvus_repair:user_embeddings',
    );
    expect(label('partitionMaintenanceWorkflow', { database: 'recsys' })).toBe(
      'partition_maintenance:recsys',
    );
    expect(label('backupWorkflow', { database: '../etc"} 1\n' })).toBe('backup:invalid');
    expect(label('backupWorkflow', undefined)).toBe('backup:unknown');
  });

  it('internal workflows and unknown types are not operations', () => {
    const child = new ChildWorkflowFailure('ns', { workflowId: 'w' }, 'x', RetryState.TIMEOUT);
    expect(describe_('pingWorkflow', 'hi', { result: { echo: 'hi' } })).toBeUndefined();
    expect(describe_('targetLockWorkflow', { target: 'shop' }, { error: child })).toBeUndefined();
    expect(describe_('someFixtureWorkflow', {}, { result: 1 })).toBeUndefined();
  });
});

describe('outcomes become series', () => {
  it('runs, last success, durations, and the backup gauges of a backup and its verification', async () => {
    const backup = describe_('backupWorkflow', { database: 'recsys' }, { result: backupResult })!;
    recordOutcome(backup);
    recordOutcome(describe_('backupWorkflow', { database: 'nosuch' }, { error: failure('NotFound', 'x') })!);
    recordOutcome(describe_('backupWorkflow', { database: 'nosuch' }, { error: failure('NotFound', 'y') })!);
    const verified = { result: { backupId, status: 'passed' } };
    recordOutcome(describeOutcome('verifyBackupWorkflow', [{ backupId }], verified, END, END + 30_000)!);

    const text = await registry.metrics();
    const runs = (labels: Record<string, string>) => sampleValue(text, 'dbops_operation_runs_total', labels);
    expect(runs({ operation: 'backup', database: 'recsys', outcome: 'succeeded', reason: 'none' })).toBe(1);
    expect(runs({ operation: 'backup', database: 'nosuch', outcome: 'failed', reason: 'NotFound' })).toBe(2);
    expect(runs({ operation: 'verify', database: 'recsys', outcome: 'succeeded', reason: 'none' })).toBe(1);

    const last = (operation: string, database: string) =>
      sampleValue(text, 'dbops_operation_last_success_timestamp_seconds', { operation, database });
    expect(last('backup', 'recsys')).toBe(END / 1000);
    expect(last('verify', 'recsys')).toBe((END + 30_000) / 1000);
    expect(last('backup', 'nosuch')).toBeUndefined();

    const hist = (suffix: string, labels: Record<string, string>) =>
      sampleValue(text, `dbops_operation_duration_seconds_${suffix}`, labels);
    expect(hist('count', { operation: 'backup', outcome: 'failed' })).toBe(2);
    expect(hist('sum', { operation: 'backup', outcome: 'succeeded' })).toBe(90);
    expect(hist('bucket', { operation: 'backup', outcome: 'succeeded', le: '60' })).toBe(0);
    expect(hist('bucket', { operation: 'backup', outcome: 'succeeded', le: '120' })).toBe(1);
    expect(hist('bucket', { operation: 'verify', outcome: 'succeeded', le: '86400' })).toBe(1);

    const gauge = (name: string, database: string) => sampleValue(text, name, { database });
    expect(gauge('dbops_backup_last_success_timestamp_seconds', 'recsys')).toBe(END / 1000);
    expect(gauge('dbops_backup_size_bytes', 'recsys')).toBe(1234);
    expect(gauge('dbops_backup_duration_seconds', 'recsys')).toBe(80);
    expect(gauge('dbops_backup_size_bytes', 'nosuch')).toBeUndefined();
    // The age counts from when the verified backup was taken (the time in its id), to now.
    const age = gauge('dbops_backup_newest_verified_age_seconds', 'recsys')!;
    expect(age).toBeCloseTo((Date.now() - START) / 1000, -1);
  });
});
