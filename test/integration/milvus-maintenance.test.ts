import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ActivityFailure, WorkflowFailedError } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, type WorkerOptions } from '@temporalio/worker';
import type { MilvusClient } from '@zilliz/milvus2-sdk-node';
import { createMilvusActivities } from '../../activities/milvus';
import { connectMilvus } from '../../activities/milvus/client';
import { failureTypeOf, rootMessage } from '../../common/failures';
import { milvusMaintenanceWorkflowId } from '../../common/ids';
import { startMilvusMaintenance } from '../../src/client/milvus';
import type { MilvusMaintenanceResult } from '../../workflows/milvus-maintenance';
import { milvusMaintenanceProgressQuery } from '../../workflows/milvus-messages';
import { REPO_ROOT } from '../../src/config';
import { testConfig, uniqueSuffix } from '../helpers/stack';
import { seededUnitVector } from '../helpers/vectors';
import { startTestWorker, type TestWorker } from '../helpers/worker';

const suffix = uniqueSuffix();
const collection = `t_items_${suffix}`;
const users = `t_users_${suffix}`;
// dim 32 keeps the data small: the SDK's insert copies vectors quadratically and CI machines are shared.
const DIM = 32;
const config = testConfig({ DBOPS_TASK_QUEUE: `test-milvus-${suffix}`, DBOPS_MILVUS_DIM: String(DIM) });
const downConfig = testConfig({
  DBOPS_TASK_QUEUE: `test-milvus-down-${suffix}`,
  DBOPS_MILVUS_ADDRESS: '127.0.0.1:1',
});
const activities = createMilvusActivities({ milvus: config.milvus, pg: config.pg });
const quietLogger = new DefaultLogger('WARN');
let client: MilvusClient;
let source: Partial<WorkerOptions>;
let worker: TestWorker;
let downWorker: TestWorker;

const unitVector = (seed: number, dim = DIM): number[] => seededUnitVector(seed, dim);

beforeAll(async () => {
  client = await connectMilvus(config.milvus);
  // One workflow bundle for both workers: bundling is the slow part of starting a worker.
  const code = await bundleWorkflowCode({
    workflowsPath: path.join(REPO_ROOT, 'workflows', 'index.ts'),
    logger: quietLogger,
  });
  source = { workflowsPath: undefined, workflowBundle: code };
});

afterAll(async () => {
  for (const name of [collection, users])
    await client?.dropCollection({ collection_name: name }).catch(() => undefined);
  client?.closeConnection();
  await Promise.all([worker?.stop(), downWorker?.stop()]);
});

describe('milvus maintenance workflow', () => {
  it('flushes, compacts (really, on the server), waits with durable timers, and searches still find the neighbours', async () => {
    const t0 = Date.now();
    const t = (m: string) => console.log(((Date.now() - t0) / 1000).toFixed(1), m);
    await activities.milvusInit({ names: { items: collection, users } });
    t('init');
    const ids: string[] = [];
    for (let b = 0; b < 4; b++) {
      const rows = Array.from({ length: 750 }, (_, i) => {
        const id = randomUUID();
        ids.push(id);
        return {
          item_id: id,
          embedding: unitVector(b * 750 + i),
          item_type: 'article',
          created_at: Date.now(),
        };
      });
      for (let i = 0; i < rows.length; i += 250) {
        const res = await client.insert({ collection_name: collection, fields_data: rows.slice(i, i + 250) });
        expect(res.status.error_code).toBe('Success');
      }
      await client.flushSync({ collection_names: [collection] });
      t('batch');
    }
    const deleted = ids.filter((_, i) => i % 10 === 0); // 300
    await client.deleteEntities({
      collection_name: collection,
      expr: `item_id in [${deleted.map((id) => JSON.stringify(id)).join(',')}]`,
    });

    // Workers start after the data is in: inserts from this process were much slower with a worker running.
    worker = await startTestWorker(config, source);
    t('worker');
    const started = await startMilvusMaintenance(worker.client, config, { collection, pollSeconds: 1 });
    expect(started.workflowId).toBe(milvusMaintenanceWorkflowId(collection, new Date()));
    expect(started.alreadyRan).toBe(false);
    t('started');
    const handle = worker.client.workflow.getHandle(started.workflowId);
    const result = (await handle.result()) as MilvusMaintenanceResult;

    t('result');
    expect(result.compactionState).toBe('Completed');
    // The dev stack runs Milvus with automatic compaction off: the 4 flushed segments are untouched.
    expect(result.before).toEqual({ segments: 4, rows: 3000, entities: 2700 });

    // The guarantee, whatever the timing: the result reports exactly the rows not purged, and the
    // summary names them if and only if there are any.
    expect(result.pendingDeletedRows).not.toBeNull();
    const pending = result.pendingDeletedRows!;
    expect(result.after.rows).toBe(result.after.entities! + pending);
    expect(/still pending purge/.test(result.summary)).toBe(pending > 0);
    expect(result.pendingReason === null).toBe(pending === 0);

    // And here nothing is pending, deterministically: the flush activity returns only once the 300
    // deletes (buffered in the datanode, in no segment the flush seals) are delta logs of their
    // segments; a manual compaction in Milvus 2.3 plans every flushed segment (forced: no 20 %
    // threshold), copies their delta logs into the plan and drops the deleted rows. All 4 segments
    // fit one merge, so one round purges them. Before the flush waited for its flush ts, the plan
    // raced the datanode's delete sync and sometimes kept all 3000 rows.
    expect(pending).toBe(0);
    expect(result.compactionRounds).toBe(1);
    expect(result.compactionIds).toEqual([result.compactionId]);
    expect(result.merges).toHaveLength(1);
    expect(result.merges[0]!.sources).toHaveLength(4);
    expect(result.after).toEqual({ segments: 1, rows: 2700, entities: 2700 });
    expect(result.indexDrift).toEqual([]);
    expect(result.summary).toContain(`segments 4 → 1`);
    expect(result.summary).toContain('no deleted rows pending purge');

    // Each round's compaction state and plans, asked from the server directly.
    for (const id of result.compactionIds) {
      const state = await client.getCompactionStateWithPlans({ compactionID: id });
      expect(String(state.state)).toMatch(/Completed|2/);
      expect(state.mergeInfos.map((m) => m.target.toString())).toEqual(
        result.merges.filter((m) => m.compactionId === id).map((m) => m.target),
      );
    }

    // Timers: the waits were durable sleeps in the workflow history, not a loop inside an activity
    // (one per compaction poll after a round's first, one before each further round).
    const history = await handle.fetchHistory();
    const timers = history.events?.filter((e) => e.timerStartedEventAttributes).length ?? 0;
    expect(timers).toBe(result.compactionPolls - 1);
    const progress = await handle.query(milvusMaintenanceProgressQuery);
    expect(progress).toMatchObject({
      phase: 'done',
      round: 1,
      compactionId: result.compactionId,
      pendingDeletedRows: 0,
    });

    for (const i of [1, 777, 1501, 2999]) {
      const hit = await client.search({
        collection_name: collection,
        vector: unitVector(i),
        limit: 3,
        params: { ef: 64 },
      });
      expect(hit.results[0]?.id).toBe(ids[i]);
      expect(hit.results[0]?.score).toBeGreaterThan(0.999);
    }
    const gone = await client.search({
      collection_name: collection,
      vector: unitVector(0),
      limit: 3,
      params: { ef: 64 },
    });
    expect(gone.results.map((r) => r.id)).not.toContain(ids[0]);

    // The same collection the same day: no second run.
    const again = await startMilvusMaintenance(worker.client, config, { collection, pollSeconds: 1 });
    expect(again.alreadyRan).toBe(true);
  }, 240_000);

  it('fails with a clear error naming the address when Milvus is unreachable, after retrying with backoff', async () => {
    downWorker = await startTestWorker(downConfig, source);
    const err = await downWorker.client.workflow
      .execute('milvusMaintenanceWorkflow', {
        taskQueue: downConfig.temporal.taskQueue,
        workflowId: `test-milvus-down-${suffix}`,
        args: [{ collection, maximumAttempts: 2 }],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(rootMessage(err)).toMatch(/^Milvus at 127\.0\.0\.1:1 is unreachable: /);
    expect(failureTypeOf(err)).toBe('Unavailable');
    const activityFailure = (err as WorkflowFailedError).cause;
    expect(activityFailure).toBeInstanceOf(ActivityFailure);
    expect((activityFailure as ActivityFailure).retryState).toBe('MAXIMUM_ATTEMPTS_REACHED');
  });
});
