import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { doctorPassed, runDoctor } from '../../src/doctor/checks';
import { s3Overrides, testConfig, uniqueSuffix } from '../helpers/stack';
import { startOwnS3, type OwnS3 } from '../helpers/versitygw';
import { startTestWorker, type TestWorker } from '../helpers/worker';

describe('dbops doctor against the real stack', () => {
  const taskQueue = `test-doctor-${uniqueSuffix()}`;
  let tw: TestWorker;
  let s3: OwnS3;

  beforeAll(async () => {
    tw = await startTestWorker(testConfig({ DBOPS_TASK_QUEUE: taskQueue }));
    s3 = await startOwnS3();
  });
  afterAll(async () => {
    await tw?.stop();
    await s3?.stop();
  });

  function configWithOwnS3() {
    return testConfig({
      ...s3Overrides('doctor'),
      DBOPS_S3_ENDPOINT: s3.endpoint,
      DBOPS_S3_BUCKET: s3.bucket,
      DBOPS_TASK_QUEUE: taskQueue,
    });
  }

  it('passes every required row when all servers and a worker are up', async () => {
    const results = await runDoctor(configWithOwnS3());
    const byName = Object.fromEntries(results.map((r) => [r.name, r]));
    expect(results.map((r) => r.name)).toEqual([
      'postgresql',
      'pg client tools',
      'temporal',
      'worker',
      'milvus',
      'backup storage',
      'slack',
    ]);
    for (const r of results.filter((x) => x.required))
      expect({ name: r.name, status: r.status }).toEqual({ name: r.name, status: 'ok' });
    expect(byName.postgresql!.detail).toMatch(/PostgreSQL 18\.\d+; pgvector and pg_trgm available/);
    expect(byName['pg client tools']!.detail).toMatch(/pg_dump\/pg_restore\/psql 18/);
    expect(byName.worker!.detail).toContain(taskQueue);
    expect(byName.milvus!.detail).toMatch(/Milvus v?2\.3\.5/);
    expect(byName.slack!.status).toBe('warn');
    expect(doctorPassed(results)).toBe(true);
  });

  it('with the S3 server stopped, fails on exactly that row with its hint', async () => {
    await s3.stop();
    const results = await runDoctor(configWithOwnS3());
    const failed = results.filter((r) => r.status === 'fail');
    expect(failed.map((r) => r.name)).toEqual(['backup storage']);
    expect(failed[0]!.hint).toMatch(/DBOPS_S3_BUCKET \(test-bucket\), DBOPS_S3_ENDPOINT/);
    expect(doctorPassed(results)).toBe(false);
  });

  it('with no worker polling, fails on the worker row and says how to start one', async () => {
    const results = await runDoctor(testConfig({ DBOPS_TASK_QUEUE: `nobody-polls-${uniqueSuffix()}` }));
    const failed = results.filter((r) => r.status === 'fail');
    expect(failed.map((r) => r.name)).toEqual(['worker']);
    expect(failed[0]!.hint).toMatch(/dbops worker/);
  });

  it('a PostgreSQL nobody listens on fails the postgresql row naming the address, and skips the tools row', async () => {
    const results = await runDoctor(testConfig({ PGPORT: '1', DBOPS_TASK_QUEUE: taskQueue }));
    const pg = results.find((r) => r.name === 'postgresql')!;
    expect(pg.status).toBe('fail');
    expect(pg.hint).toContain('127.0.0.1:1');
    expect(results.find((r) => r.name === 'pg client tools')!.status).toBe('skip');
  });
});
