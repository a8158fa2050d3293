import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSystemActivities } from '../../activities/system';
import { resolveSource } from '../../src/worker/create';
import { pingWorkflow } from '../../workflows/ping';
import { testConfig, uniqueSuffix } from '../helpers/stack';
import { createTimeSkippingEnv } from '../helpers/time-skipping';
import { startTestWorker, type TestWorker } from '../helpers/worker';

describe('a workflow with an activity round-trips through the real Temporal dev server', () => {
  let tw: TestWorker;
  beforeAll(async () => {
    tw = await startTestWorker(testConfig({ DBOPS_TASK_QUEUE: `test-foundation-${uniqueSuffix()}` }));
  });
  afterAll(async () => {
    await tw?.stop();
  });

  it('runs pingWorkflow on the worker started by the test', async () => {
    const result = await tw.client.workflow.execute(pingWorkflow, {
      taskQueue: tw.config.temporal.taskQueue,
      workflowId: `test-ping-${uniqueSuffix()}`,
      args: ['hello'],
    });
    expect(result.echo).toBe('hello');
    expect(result.worker).toMatch(/^dbops@/);
  });
});

describe('time-skipping test server (installed binary, no download)', () => {
  it('a workflow sleeping 24 hours finishes in seconds', async () => {
    const env = await createTimeSkippingEnv();
    try {
      const taskQueue = `test-ts-${uniqueSuffix()}`;
      const worker = await Worker.create({
        connection: env.nativeConnection,
        taskQueue,
        workflowsPath: resolveSource(path.join(__dirname, '..', 'fixtures', 'workflows')),
        activities: createSystemActivities({ identity: 'time-skipping-worker' }),
      });
      const started = Date.now();
      const identity = await worker.runUntil(
        env.client.workflow.execute('sleepThenPing', {
          taskQueue,
          workflowId: `sleepy-${uniqueSuffix()}`,
          args: [24],
        }),
      );
      expect(identity).toBe('time-skipping-worker');
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      await env.teardown();
    }
  });
});
