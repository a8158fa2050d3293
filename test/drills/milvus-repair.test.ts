/**
 * Drill 14: `dbops milvus check --fix` pointed at an empty or wrong PostgreSQL database. The real
 * CLI (a child process) against the dev stack's Milvus, PostgreSQL and Temporal, with an in-process
 * worker on the drill's own task queue: the repair runs as a workflow, refuses to delete more than
 * its cap without a typed confirmation, and deletes exactly the orphans otherwise. Every count is a
 * Strong read of the collection, never its statistics.
 */
import { randomUUID } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import { ConsistencyLevelEnum, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMilvus } from '../../activities/milvus/client';
import { itemEmbeddingsSpec } from '../../activities/milvus/collections';
import { ensureCollection } from '../../activities/milvus/manage';
import { withPg } from '../../activities/postgres/connection';
import { milvusRepairWorkflowId } from '../../common/ids';
import { waitFor } from '../integration/restore-fixtures';
import { testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { seededUnitVector } from '../helpers/vectors';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import { dbops, type CliRun } from './kit/dbops-cli';
import { recordDrill } from './kit/report';

const suffix = uniqueSuffix();
const collection = `t_repair_${suffix}`;
const goodDb = `t_milvusrepair_${suffix}`;
const emptyDb = `t_milvusrepair_empty_${suffix}`;
const wrongDb = `t_milvusrepair_wrong_${suffix}`;
const workflowId = milvusRepairWorkflowId(collection);
const DIM = 32;
const N = 200;
const ORPHANS = 5;
const env = {
  DBOPS_TASK_QUEUE: `drill-milvus-repair-${suffix}`,
  DBOPS_MILVUS_DIM: String(DIM),
  PGDATABASE: goodDb,
};
const config = testConfig(env);
const pgIds = Array.from({ length: N }, () => randomUUID()).sort();
const orphanIds = Array.from({ length: ORPHANS }, () => randomUUID()).sort();
let client: MilvusClient;
let worker: TestWorker;
const started = Date.now();
/** What the first test saw, for the summary row recorded by the last. */
let refusals = '';

/** `dbops <args>` on the drill's namespace and task queue, with the run ID of the Web UI link it printed. */
async function run(...args: string[]): Promise<CliRun & { runId: string | undefined }> {
  const r = await dbops(
    { DBOPS_TEMPORAL_NAMESPACE: testRun().namespace, DBOPS_BACKUP_DIR: testRun().backupDir, ...env },
    ...args,
  );
  // The Web UI link the CLI printed: …/workflows/<id>/<runId>/history
  const link = /\/workflows\/([^/\s]+)\/([^/\s]+)\/history/.exec(r.stderr);
  if (link) expect(decodeURIComponent(link[1]!)).toBe(workflowId);
  return { ...r, runId: link ? decodeURIComponent(link[2]!) : undefined };
}

/** `dbops milvus check` of the drill's collection against `database` (a dry run unless `--fix`). */
const check = (database: string, ...more: string[]) =>
  run('milvus', 'check', '--collection', collection, '--kind', 'items', '--database', database, ...more);
const fix = (database: string, ...more: string[]) => check(database, '--fix', ...more);

/** Every id in the collection, by a Strong query (deletes applied, whatever the flush state). */
async function milvusIds(): Promise<string[]> {
  const res = await client.query({
    collection_name: collection,
    expr: 'item_id != ""',
    output_fields: ['item_id'],
    limit: 16384,
    consistency_level: ConsistencyLevelEnum.Strong,
  });
  expect(res.status.error_code).toBe('Success');
  return res.data.map((row) => String(row.item_id)).sort();
}

async function strongCount(): Promise<number> {
  const res = await client.query({
    collection_name: collection,
    expr: '',
    output_fields: ['count(*)'],
    consistency_level: ConsistencyLevelEnum.Strong,
  });
  return Number(res.data[0]?.['count(*)']);
}

/** The run as the Web UI shows it: status, static summary, search attributes, activity summaries. */
async function inspectRun(runId: string) {
  const handle = worker.client.workflow.getHandle(workflowId, runId);
  const desc = await handle.describe();
  const history = await handle.fetchHistory();
  const activitySummaries = (history.events ?? [])
    .filter((e) => e.activityTaskScheduledEventAttributes && e.userMetadata?.summary)
    .map((e) => defaultPayloadConverter.fromPayload<string>(e.userMetadata!.summary!));
  return {
    status: desc.status.name,
    type: desc.type,
    summary: await desc.staticSummary(),
    attributes: desc.typedSearchAttributes.getAll().map((p) => `${p.key.name}=${String(p.value)}`),
    activitySummaries,
  };
}

async function createDb(name: string, rows: readonly string[] | undefined): Promise<void> {
  await withPg(config.pg, 'postgres', (pg) => pg.query(`CREATE DATABASE ${name}`));
  if (!rows) return; // the wrong database: no embedding table at all
  await withPg(config.pg, name, async (pg) => {
    await pg.query('CREATE EXTENSION IF NOT EXISTS vector');
    // The V005 shape, without the foreign key (no items rows needed).
    await pg.query(`CREATE TABLE item_embeddings (item_id uuid PRIMARY KEY, embedding vector(${DIM}) NOT NULL,
                      model_version text NOT NULL DEFAULT 'v1', updated_at timestamptz NOT NULL DEFAULT now())`);
    if (rows.length)
      await pg.query(
        `INSERT INTO item_embeddings (item_id, embedding)
         SELECT id, $2::vector FROM unnest($1::uuid[]) AS id`,
        [rows, JSON.stringify(seededUnitVector(1, DIM))],
      );
  });
}

/** The items collection as `dbops milvus init` makes it (Strong consistency, index, loaded), holding `ids`. */
async function createCollection(ids: readonly string[]): Promise<void> {
  client = await connectMilvus(config.milvus);
  const { indexType, metric } = config.milvus;
  await ensureCollection(client, itemEmbeddingsSpec(DIM, collection), { indexType, metric });
  const rows = ids.map((id, i) => ({
    item_id: id,
    embedding: seededUnitVector(i, DIM),
    item_type: 'movie',
    created_at: 1,
  }));
  const res = await client.insert({ collection_name: collection, fields_data: rows });
  expect(res.status.error_code).toBe('Success');
}

beforeAll(async () => {
  // At once: the worker's bundling and Milvus' index build and load are the slow parts.
  [worker] = await Promise.all([
    startTestWorker(config),
    createCollection([...pgIds, ...orphanIds]),
    createDb(goodDb, pgIds),
    createDb(emptyDb, []),
    createDb(wrongDb, undefined),
  ]);
}, 120_000);

afterAll(async () => {
  await client?.dropCollection({ collection_name: collection }).catch(() => undefined);
  client?.closeConnection();
  await worker?.stop();
  for (const db of [goodDb, emptyDb, wrongDb])
    await withPg(config.pg, 'postgres', (pg) => pg.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`));
  console.log(`drill 14 wall time ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

describe('drill 14: milvus check --fix against an empty or wrong PostgreSQL database', () => {
  it('an empty database: the dry run says it would be refused; --fix is refused as a workflow, nothing deleted', async () => {
    const total = N + ORPHANS;
    expect(await strongCount()).toBe(total);
    const dry = await check(emptyDb);
    expect(dry.code).toBe(1);
    expect(dry.stdout).toContain(`0 ids in PostgreSQL, ${total} in Milvus`);
    expect(dry.stdout).toContain(`--fix would be refused: ${total} of the ${total} entities`);

    const refused = await fix(emptyDb);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('[Refused] refused, nothing changed');
    for (const part of [
      `${total} of the ${total} entities`,
      '(100%)',
      'the 10% cap',
      '--max-delete-share 0.1',
    ])
      expect(refused.stderr).toContain(part);
    expect(refused.stderr).toContain(`--confirm-delete ${total}`);
    expect(await strongCount()).toBe(total);
    expect(await milvusIds()).toEqual([...pgIds, ...orphanIds].sort());

    const run = await inspectRun(refused.runId!);
    expect(run).toMatchObject({ status: 'FAILED', type: 'milvusRepairWorkflow' });
    expect(run.summary).toBe(`repair Milvus ${collection} from PostgreSQL ${emptyDb}`);
    expect(run.attributes).toEqual(
      expect.arrayContaining(['DbopsOperation=milvus-repair', `DbopsDatabase=${emptyDb}`]),
    );
    // Only the comparison ran: no repair activity was ever scheduled.
    expect(run.activitySummaries).toEqual([`compare ids of ${collection} with ${emptyDb}`]);

    const wrong = await fix(wrongDb);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain(
      `[Misconfigured] PostgreSQL table item_embeddings does not exist in database ${wrongDb}`,
    );
    expect(await strongCount()).toBe(total);
    refusals = `empty db: refused (${total} of ${total}, 100% > 10% cap), exit 1; no-table db: Misconfigured, exit 2`;
  }, 60_000);

  it('the right database with a few real orphans: exactly those are deleted', async () => {
    expect(await strongCount()).toBe(N + ORPHANS);
    const r = await fix(goodDb, '--json');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as {
      deleted: number;
      upserted: number;
      before: { orphaned: { sample: string[] } };
    };
    expect(result).toMatchObject({ deleted: ORPHANS, upserted: 0 });
    expect(result.before.orphaned.sample).toEqual(orphanIds);
    expect(await strongCount()).toBe(N);
    expect(await milvusIds()).toEqual(pgIds);

    const run = await inspectRun(r.runId!);
    expect(run.status).toBe('COMPLETED');
    expect(run.activitySummaries).toEqual([
      `compare ids of ${collection} with ${goodDb}`,
      `repair ${collection}: upsert 0, delete ${ORPHANS} orphans (2.4%)`,
    ]);
  }, 60_000);

  it('over the cap: refused without confirmation or with a wrong count; --confirm-delete <found> deletes as confirmed', async () => {
    // Upstream deleted 50 items: 25% of the collection is now orphaned, above the 10% cap.
    const gone = pgIds.slice(0, 50);
    const kept = pgIds.slice(50);
    await withPg(config.pg, goodDb, (pg) =>
      pg.query('DELETE FROM item_embeddings WHERE item_id = ANY($1::uuid[])', [gone]),
    );

    const refused = await fix(goodDb);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`50 of the ${N} entities`);
    expect(refused.stderr).toContain('(25%)');
    expect(refused.stderr).toContain('--confirm-delete 50');
    const mismatch = await fix(goodDb, '--confirm-delete', '49');
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toContain('--confirm-delete 49 does not match the 50 orphans found');
    expect(await strongCount()).toBe(N);

    const confirmed = await fix(goodDb, '--confirm-delete', '50');
    expect(confirmed.code).toBe(0);
    expect(confirmed.stdout).toContain(`deleted 50 of ${N} entities (confirmed)`);
    expect(await strongCount()).toBe(N - 50);
    expect(await milvusIds()).toEqual(kept);
    const run = await inspectRun(confirmed.runId!);
    expect(run.summary).toBe(
      `repair Milvus ${collection} from PostgreSQL ${goodDb}, deletion of 50 confirmed`,
    );
    expect(run.activitySummaries[1]).toBe(
      `repair ${collection}: upsert 0, delete 50 orphans (25%, confirmed)`,
    );

    // Every run is listed in the namespace under the collection's workflow ID, as the Web UI shows them.
    const runs = await waitFor('the six repair runs listed', async () => {
      const list: string[] = [];
      for await (const w of worker.client.workflow.list({ query: `WorkflowId = '${workflowId}'` }))
        list.push(w.status.name);
      return list.length === 6 ? list.sort() : undefined;
    });
    expect(runs).toEqual(['COMPLETED', 'COMPLETED', 'FAILED', 'FAILED', 'FAILED', 'FAILED']);
    recordDrill({
      drill: '14. Milvus repair cap',
      fault: `check --fix pointed at an empty DB, a DB without the table, then 50 of ${N} ids deleted upstream`,
      dataCheck: `Strong count(*): ${N + ORPHANS} unchanged after refusals; ${N + ORPHANS}→${N} (the ${ORPHANS} orphan ids); ${N}→${N - 50} = PG ids exactly`,
      outcome: `${refusals}; 25% refused, --confirm-delete 49 refused, 50 deleted; 6 runs listed in the namespace`,
    });
  }, 90_000);
});
