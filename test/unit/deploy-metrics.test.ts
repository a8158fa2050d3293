import { afterEach, describe, expect, it } from 'vitest';
import { workerReadiness } from '../../src/worker/http';
import {
  newestVerifiedByDatabase,
  recordBackupSuccess,
  recordBackupVerified,
  registerBackupAgeSource,
  registry,
  resetBackupMetrics,
} from '../../src/worker/metrics';

function sample(text: string, name: string, database: string): number | undefined {
  const m = new RegExp(`^${name}\\{database="${database}"\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

afterEach(() => resetBackupMetrics());

describe('dbops backup metrics', () => {
  it('exposes the newest successful backup per database, recorded or from a source', async () => {
    const takenAt = new Date('2026-11-25T03:00:00Z');
    const finishedAt = new Date('2026-11-25T03:10:00Z');
    const backup = { database: 'recsys', takenAt, sizeBytes: 633_000_000, durationSeconds: 9.5, finishedAt };
    recordBackupSuccess(backup);
    const older = {
      kind: 'finished',
      database: 'recsys',
      takenAt: new Date('2026-11-24T03:00:00Z'),
    } as const;
    // A source (the store after a restart) knows an older backup of recsys, the same one again (the
    // worker's record stays) and one of analytics that this worker never ran.
    registerBackupAgeSource(() => [
      { ...older, finishedAt: new Date('2026-11-24T03:05:00Z'), sizeBytes: 1, durationSeconds: 1 },
      { kind: 'finished', ...backup, finishedAt: new Date('2026-11-25T03:09:00Z'), durationSeconds: 9 },
      {
        ...older,
        database: 'analytics',
        finishedAt: new Date('2026-11-24T03:01:00Z'),
        sizeBytes: 42,
        durationSeconds: 60,
      },
    ]);
    const text = await registry.metrics();
    expect(sample(text, 'dbops_backup_last_success_timestamp_seconds', 'recsys')).toBe(
      finishedAt.getTime() / 1000,
    );
    expect(sample(text, 'dbops_backup_size_bytes', 'recsys')).toBe(633_000_000);
    expect(sample(text, 'dbops_backup_duration_seconds', 'recsys')).toBe(9.5);
    expect(sample(text, 'dbops_backup_last_success_timestamp_seconds', 'analytics')).toBe(
      Date.parse('2026-11-24T03:01:00Z') / 1000,
    );
    expect(sample(text, 'dbops_backup_size_bytes', 'analytics')).toBe(42);
    expect(sample(text, 'dbops_backup_duration_seconds', 'analytics')).toBe(60);
  });

  it('one scrape asks each source once, however many gauges it feeds', async () => {
    let calls = 0;
    registerBackupAgeSource(() => {
      calls++;
      return [{ kind: 'verified', database: 'recsys', takenAt: new Date() }];
    });
    await registry.metrics();
    expect(calls).toBe(1);
  });

  it('computes the age of the newest verified backup at scrape time, from records and sources', async () => {
    const hour = 3_600_000;
    recordBackupVerified('recsys', new Date(Date.now() - 30 * hour));
    recordBackupVerified('recsys', new Date(Date.now() - 50 * hour)); // older: ignored
    const unregister = registerBackupAgeSource(async () => [
      { kind: 'verified', database: 'recsys', takenAt: new Date(Date.now() - 2 * hour) },
      { kind: 'verified', database: 'analytics', takenAt: new Date(Date.now() - 27 * hour) },
    ]);
    let text = await registry.metrics();
    expect(sample(text, 'dbops_backup_newest_verified_age_seconds', 'recsys')).toBeCloseTo(2 * 3600, -1);
    expect(sample(text, 'dbops_backup_newest_verified_age_seconds', 'analytics')).toBeCloseTo(27 * 3600, -1);

    unregister();
    text = await registry.metrics();
    expect(sample(text, 'dbops_backup_newest_verified_age_seconds', 'recsys')).toBeCloseTo(30 * 3600, -1);
    expect(sample(text, 'dbops_backup_newest_verified_age_seconds', 'analytics')).toBeUndefined();
  });

  it('a failing source is counted and does not break the scrape', async () => {
    recordBackupVerified('recsys', new Date(Date.now() - 1000));
    registerBackupAgeSource(() => {
      throw new Error('catalog unreachable');
    });
    const newest = await newestVerifiedByDatabase();
    expect([...newest.keys()]).toEqual(['recsys']);
    const text = await registry.metrics();
    expect(text).toMatch(/^dbops_backup_age_source_errors_total [1-9]/m);
  });
});

describe('worker readiness', () => {
  const answering = {
    withDeadline: <T>(_deadline: number | Date, fn: () => Promise<T>) => fn(),
    workflowService: { getSystemInfo: async () => ({}) },
  };

  it('is ready only when every worker is RUNNING and the server answers, and caches the probe', async () => {
    let calls = 0;
    let state: 'RUNNING' | 'STOPPING' = 'RUNNING';
    const connection = {
      ...answering,
      workflowService: {
        getSystemInfo: async () => {
          calls++;
          return {};
        },
      },
    };
    const check = workerReadiness(
      [{ getState: () => 'RUNNING' }, { getState: () => state }],
      connection as never,
      { cacheMs: 60_000 },
    );
    expect(await check()).toEqual({ ready: true, reason: 'worker RUNNING, Temporal server answers' });
    expect(await check()).toMatchObject({ ready: true });
    expect(calls).toBe(1);
    state = 'STOPPING';
    expect(await check()).toEqual({ ready: false, reason: 'worker states: RUNNING, STOPPING' });
  });

  it('is not ready when Temporal does not answer', async () => {
    const connection = {
      withDeadline: answering.withDeadline,
      workflowService: {
        getSystemInfo: async () => {
          throw new Error('14 UNAVAILABLE: connection refused');
        },
      },
    };
    const check = workerReadiness([{ getState: () => 'RUNNING' }], connection as never);
    const r = await check();
    expect(r.ready).toBe(false);
    expect(r.reason).toContain('connection refused');
  });
});
