import { ActivityFailure, RetryState } from '@temporalio/common';
import { ContinueAsNew } from '@temporalio/workflow';
import { afterEach, describe, expect, it } from 'vitest';
import { FailureType, failure } from '../../common/failures';
import { registry } from '../../src/worker/metrics';
import { recordOutcome, resetOutcomeMetrics } from '../../src/worker/outcomes';
import { describeOutcome, type RunEnd } from '../../workflows/outcomes';
import { sampleValue } from '../helpers/prometheus';

const START = Date.UTC(2026, 11, 5, 1, 30, 0);
const END = START + 60_000;
const describe_ = (type: string, input: unknown, end: RunEnd) =>
  describeOutcome(type, [input], end, START, END);
const inActivity = (cause: Error) =>
  new ActivityFailure('activity failed', 'planBaseBackup', '1', RetryState.NON_RETRYABLE_FAILURE, 'w', cause);

afterEach(() => resetOutcomeMetrics());

describe('point-in-time recovery runs are operations', () => {
  it('a base backup is labelled by its kind, succeeded or failed', () => {
    const result = { id: '20261205T013000Z-full', kind: 'full', sizeBytes: 10, durationMs: 5 };
    expect(describe_('baseBackupWorkflow', { kind: 'full', trigger: 'scheduled' }, { result })).toEqual({
      operation: 'basebackup',
      workflowType: 'baseBackupWorkflow',
      database: 'full',
      outcome: 'succeeded',
      reason: 'none',
      durationMs: 60_000,
      finishedAtMs: END,
    });
    const refused = inActivity(failure(FailureType.Refused, 'no full base backup: take a full one first'));
    expect(describe_('baseBackupWorkflow', { kind: 'incremental' }, { error: refused })).toMatchObject({
      operation: 'basebackup',
      database: 'incremental',
      outcome: 'failed',
      reason: 'Refused',
    });
    expect(describe_('baseBackupWorkflow', { kind: '../x' }, { error: refused })?.database).toBe('invalid');
  });

  it('the WAL archiver: a stop succeeds, a failure counts, a continue-as-new ends no run', () => {
    const input = { systemId: '7715406755856891660', slot: 'dbops_wal_archiver' };
    expect(describe_('walArchiverWorkflow', input, { result: { archived: 3 } })).toMatchObject({
      operation: 'wal_archiver',
      database: 'dbops_wal_archiver',
      outcome: 'succeeded',
    });
    const bad = failure(FailureType.InvalidInput, 'not a PostgreSQL system identifier: x');
    expect(describe_('walArchiverWorkflow', { ...input, systemId: 'x' }, { error: bad })).toMatchObject({
      outcome: 'failed',
      reason: 'InvalidInput',
    });
    // What continueAsNew() throws out of the workflow function: an Error, not a Temporal failure.
    const continued = new ContinueAsNew({
      workflowType: 'walArchiverWorkflow',
      arguments: [],
      taskQueue: 'dbops',
    });
    expect(describe_('walArchiverWorkflow', input, { error: continued })).toBeUndefined();
  });

  it('a point-in-time restore counts as a restore of its target, with the restore outcomes', () => {
    const input = {
      database: 'recsys',
      target: 'recsys_pitr',
      recovery: { kind: 'latest' },
      backup: 'point-in-time:latest',
      requestedBy: 'ann',
    };
    const end = (outcome: string) => ({ result: { outcome, target: 'recsys_pitr' } });
    expect(
      (['restored', 'dry-run', 'rejected', 'timed-out'] as const).map(
        (o) => describe_('pointInTimeRestoreWorkflow', input, end(o))?.outcome,
      ),
    ).toEqual(['succeeded', 'dry_run', 'rejected', 'timed_out']);
    const gap = failure(FailureType.Refused, 'WAL segment 000000010000000000000003 is missing');
    const { target: _, ...noTarget } = input;
    expect(describe_('pointInTimeRestoreWorkflow', noTarget, { error: gap })).toMatchObject({
      operation: 'restore',
      database: 'recsys',
      outcome: 'failed',
      reason: 'Refused',
    });
  });

  it('become series like the other operations', async () => {
    recordOutcome(describe_('baseBackupWorkflow', { kind: 'full' }, { result: { kind: 'full' } })!);
    recordOutcome(
      describe_(
        'baseBackupWorkflow',
        { kind: 'incremental' },
        { error: failure(FailureType.Unavailable, 'x') },
      )!,
    );
    const text = await registry.metrics();
    const runs = (labels: Record<string, string>) => sampleValue(text, 'dbops_operation_runs_total', labels);
    expect(runs({ operation: 'basebackup', database: 'full', outcome: 'succeeded', reason: 'none' })).toBe(1);
    expect(
      runs({ operation: 'basebackup', database: 'incremental', outcome: 'failed', reason: 'Unavailable' }),
    ).toBe(1);
    expect(
      sampleValue(text, 'dbops_operation_last_success_timestamp_seconds', {
        operation: 'basebackup',
        database: 'full',
      }),
    ).toBe(END / 1000);
  });
});
