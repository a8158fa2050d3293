import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SlackMessage } from '../../activities/notify';
import { failureTypeOf } from '../../common/failures';
import { resolveSource } from '../../src/worker/create';
import type {
  MilvusMaintenanceInput,
  MilvusMaintenanceResult,
  milvusMaintenanceWorkflow,
} from '../../workflows/milvus-maintenance';
import { milvusMaintenanceProgressQuery } from '../../workflows/milvus-messages';
import { uniqueSuffix } from '../helpers/stack';
import { createTimeSkippingEnv } from '../helpers/time-skipping';

/**
 * The workflow's honesty branch, against fake Milvus activities on the time-skipping test server
 * (the 60 s waits between rounds pass instantly): it reports the deleted rows a round did not
 * purge, tries again only while it can help, and never claims a purge the stats do not show.
 * test/integration/milvus-maintenance.test.ts runs the same workflow against the real Milvus.
 */

/** What one compaction round does on the fake server. */
interface FakeRound {
  /** Merge plans the compaction makes (0: Milvus planned nothing). */
  readonly merges: number;
  /** Deleted rows the compaction purges. */
  readonly purges: number;
}

/** A collection on the fake server: 4 segments of 750 rows, 300 of them deleted. */
class FakeCollection {
  segments = 4;
  rows = 3000;
  readonly deleted: number;
  readonly entities: number | null;
  readonly calls: string[] = [];
  readonly slack: SlackMessage[] = [];
  private readonly polls = new Map<string, number>();

  constructor(
    readonly rounds: readonly FakeRound[],
    opts: { loaded?: boolean } = {},
  ) {
    this.deleted = 300;
    this.entities = opts.loaded === false ? null : this.rows - this.deleted;
  }

  compactions(): number {
    return this.polls.size;
  }

  start(): string {
    const id = `c${this.polls.size + 1}`;
    this.polls.set(id, 0);
    return id;
  }

  /** Executing on the first poll, Completed (and applied) on the second. */
  poll(id: string) {
    const n = (this.polls.get(id) ?? 0) + 1;
    this.polls.set(id, n);
    const round = this.round(id);
    if (n === 2) {
      this.rows -= round.purges;
      if (round.merges) this.segments = round.merges;
    }
    return {
      compactionId: id,
      state: n >= 2 ? ('Completed' as const) : ('Executing' as const),
      executingPlans: n >= 2 ? 0 : round.merges,
      completedPlans: n >= 2 ? round.merges : 0,
      timedOutPlans: 0,
      failedPlans: 0,
    };
  }

  plans(id: string) {
    const round = this.round(id);
    return {
      compactionId: id,
      state: 'Completed',
      merges: Array.from({ length: round.merges }, (_, i) => ({
        sources: [`${id}-s${i}a`, `${id}-s${i}b`],
        target: `${id}-t${i}`,
      })),
    };
  }

  stats(name: string) {
    return {
      name,
      exists: true,
      rowCount: this.rows,
      // count(*) of a loaded collection; null when not loaded, like collectionStats.
      liveEntities: this.entities,
      persistentSegments: { count: this.segments, rows: this.rows, ids: [] },
      loadedSegments: { count: 0, rows: 0, ids: [] },
      index: null,
      loadState: this.entities === null ? 'LoadStateNotLoad' : 'LoadStateLoaded',
    };
  }

  private round(id: string): FakeRound {
    const i = Number(id.slice(1)) - 1;
    const round = this.rounds[i];
    if (!round) throw new Error(`fake: no round ${i + 1} scripted`);
    return round;
  }
}

const taskQueue = `test-milvus-honesty-${uniqueSuffix()}`;
const fakes = new Map<string, FakeCollection>();
let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;

function fake(collection: string): FakeCollection {
  const f = fakes.get(collection);
  if (!f) throw new Error(`fake: unknown collection ${collection}`);
  return f;
}

const activities = {
  async milvusStats(input: { collections: string[] }) {
    return input.collections.map((c) => fake(c).stats(c));
  },
  async milvusFlush(input: { collection: string }) {
    fake(input.collection).calls.push('flush');
    return { flushed: true, flushTs: '1', sealedSegments: 0, polls: 1, waitedMs: 0 };
  },
  async milvusStartCompaction(input: { collection: string }) {
    const f = fake(input.collection);
    f.calls.push('compact');
    return { compactionId: `${input.collection}/${f.start()}` };
  },
  async milvusCompactionState(input: { compactionId: string }) {
    const [collection, id] = input.compactionId.split('/') as [string, string];
    return { ...fake(collection).poll(id), compactionId: input.compactionId };
  },
  async milvusCompactionPlans(input: { compactionId: string }) {
    const [collection, id] = input.compactionId.split('/') as [string, string];
    return { ...fake(collection).plans(id), compactionId: input.compactionId };
  },
  async milvusAdvise(input: { collection: string }) {
    return { collection: input.collection, drift: [] };
  },
  async notifySlack(message: SlackMessage) {
    const collection = /of (\S+?):? /.exec(message.text)?.[1];
    if (collection) fakes.get(collection)?.slack.push(message);
    return { sent: false };
  },
};

beforeAll(async () => {
  env = await createTimeSkippingEnv();
  worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowsPath: resolveSource(path.join(__dirname, '..', '..', 'workflows', 'index')),
    activities,
  });
  running = worker.run();
}, 120_000);

afterAll(async () => {
  if (worker?.getState() === 'RUNNING') worker.shutdown();
  await running;
  await env?.teardown();
});

async function maintain(
  collection: string,
  f: FakeCollection,
  input: Partial<MilvusMaintenanceInput> = {},
): Promise<{ result: MilvusMaintenanceResult; timers: number; progress: unknown }> {
  fakes.set(collection, f);
  const handle = await env.client.workflow.start<typeof milvusMaintenanceWorkflow>(
    'milvusMaintenanceWorkflow',
    {
      taskQueue,
      workflowId: `${collection}-${uniqueSuffix()}`,
      args: [{ collection, pollSeconds: 5, maximumAttempts: 1, ...input }],
    },
  );
  const result = await handle.result();
  const history = await handle.fetchHistory();
  const timers = history.events?.filter((e) => e.timerStartedEventAttributes).length ?? 0;
  const progress = await handle.query(milvusMaintenanceProgressQuery);
  return { result, timers, progress };
}

/** What every result must satisfy, whatever happened. */
function expectHonest(result: MilvusMaintenanceResult): void {
  const pending = result.pendingDeletedRows;
  if (pending !== null) expect(result.after.rows).toBe(result.after.entities! + pending);
  expect(/still pending purge/.test(result.summary)).toBe((pending ?? 0) > 0);
  expect(/no deleted rows pending purge/.test(result.summary)).toBe(pending === 0);
  expect(result.pendingReason === null).toBe(pending === 0);
  expect(result.compactionIds).toHaveLength(result.compactionRounds);
}

describe('milvus maintenance reports only what happened', () => {
  it('rows still pending after every round: stops at maxCompactionRounds and says so', async () => {
    const f = new FakeCollection([
      { merges: 1, purges: 0 },
      { merges: 1, purges: 100 },
      { merges: 1, purges: 0 },
    ]);
    const { result, timers, progress } = await maintain('stubborn', f);
    expectHonest(result);
    expect(result).toMatchObject({
      compactionRounds: 3,
      pendingDeletedRows: 200,
      pendingReason: 'still there after 3 compaction round(s)',
      before: { segments: 4, rows: 3000, entities: 2700 },
      after: { segments: 1, rows: 2900, entities: 2700 },
    });
    expect(result.summary).toContain(
      '200 deleted rows still pending purge (still there after 3 compaction round(s))',
    );
    expect(f.calls).toEqual(['flush', 'compact', 'flush', 'compact', 'flush', 'compact']);
    // Two polls per round (one timer between them) plus one timer before each further round.
    expect(result.compactionPolls).toBe(6);
    expect(timers).toBe(3 + 2);
    expect(progress).toMatchObject({ phase: 'done', round: 3, pendingDeletedRows: 200 });
    expect(f.slack).toHaveLength(1);
    expect(f.slack[0]!.text).toMatch(/^:warning: .*200 deleted rows still pending purge/);
    expect(f.slack[0]!.fields).toContainEqual({ title: 'Pending purge', value: '200 deleted rows' });
  });

  it('a round that plans nothing ends the retries early, with that reason', async () => {
    const f = new FakeCollection([
      { merges: 1, purges: 0 },
      { merges: 0, purges: 0 },
    ]);
    const { result } = await maintain('noplans', f, { maxCompactionRounds: 5 });
    expectHonest(result);
    expect(result).toMatchObject({
      compactionRounds: 2,
      pendingDeletedRows: 300,
      pendingReason: 'Milvus planned no compaction in round 2',
      merges: [{ compactionId: 'noplans/c1' }],
    });
    expect(result.summary).toContain('300 deleted rows still pending purge (Milvus planned no compaction');
    expect(f.compactions()).toBe(2);
  });

  it('rows purged by a later round: reported as purged, after the rounds it took', async () => {
    const f = new FakeCollection([
      { merges: 1, purges: 0 },
      { merges: 1, purges: 300 },
    ]);
    const { result, timers } = await maintain('latepurge', f);
    expectHonest(result);
    expect(result).toMatchObject({
      compactionRounds: 2,
      compactionIds: ['latepurge/c1', 'latepurge/c2'],
      compactionId: 'latepurge/c2',
      pendingDeletedRows: 0,
      pendingReason: null,
      after: { segments: 1, rows: 2700, entities: 2700 },
    });
    expect(timers).toBe(result.compactionPolls - 1);
    expect(f.slack[0]!.text).toMatch(/^:broom: /);
    expect(f.slack[0]!.fields).toContainEqual({ title: 'Pending purge', value: '0 deleted rows' });
  });

  it('purged in the first round: one round, no waiting', async () => {
    const f = new FakeCollection([{ merges: 1, purges: 300 }]);
    const { result, timers } = await maintain('onepass', f);
    expectHonest(result);
    expect(result).toMatchObject({ compactionRounds: 1, pendingDeletedRows: 0 });
    expect(timers).toBe(1);
  });

  it('a collection that is not loaded: pending rows unknown, never claimed purged, no retry', async () => {
    const f = new FakeCollection([{ merges: 1, purges: 300 }], { loaded: false });
    const { result } = await maintain('notloaded', f);
    expectHonest(result);
    expect(result).toMatchObject({
      compactionRounds: 1,
      pendingDeletedRows: null,
      pendingReason: 'live entity count unknown: collection not loaded',
    });
    expect(result.summary).toContain('deleted rows pending purge unknown');
    expect(f.slack[0]!.fields).toContainEqual({ title: 'Pending purge', value: 'unknown' });
  });

  it('no time left before the deadline: no further round', async () => {
    const f = new FakeCollection([
      { merges: 1, purges: 0 },
      { merges: 1, purges: 300 },
    ]);
    // 1 min deadline; the round takes 5 s of polling, and a 60 s wait would pass it.
    const { result } = await maintain('deadline', f, { deadlineMinutes: 1 });
    expectHonest(result);
    expect(result).toMatchObject({ compactionRounds: 1, pendingDeletedRows: 300 });
    expect(result.pendingReason).toMatch(/1 min deadline leaves no time for round 2/);
  });

  it('rejects maxCompactionRounds < 1', async () => {
    const err = await maintain('badinput', new FakeCollection([]), { maxCompactionRounds: 0 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(failureTypeOf(err)).toBe('InvalidInput');
  });
});
