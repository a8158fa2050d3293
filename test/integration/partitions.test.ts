import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from 'pg';
import { migrateFn } from '../../activities/postgres/migrate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withPg } from '../../activities/postgres/connection';
import { createBackupStore } from '../../activities/storage';
import { makeBackupId, manifestKey, verificationKey } from '../../common/backup';
import { addMonths, monthOf, monthStart, partitionName } from '../../common/lifecycle';
import { verifyScratchDatabaseName } from '../../common/restore';
import { runCleanup } from '../../src/client/cleanup';
import { maintenanceInput, startPartitionMaintenance } from '../../src/client/partitions';
import { partitionMaintenanceWorkflowId } from '../../common/ids';
import type { PartitionMaintenanceResult } from '../../workflows/partition-maintenance';
import { testConfig, uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import { partitionMaintenanceSchedules } from '../../src/schedules/partitions';

const suffix = uniqueSuffix();
const database = `t_partitions_${suffix}`;
const backupDir = mkdtempSync(path.join(os.tmpdir(), 'dbops-partitions-'));
const RETENTION_MONTHS = 6;
const config = testConfig({
  DBOPS_TASK_QUEUE: `test-partitions-${suffix}`,
  DBOPS_BACKUP_DIR: backupDir,
  DBOPS_PARTITION_RETENTION_MONTHS: String(RETENTION_MONTHS),
});
const admin = <T>(fn: (c: Client) => Promise<T>) => withPg(config.pg, 'postgres', fn);
const db = <T>(fn: (c: Client) => Promise<T>) => withPg(config.pg, database, fn);

const thisMonth = monthOf(new Date());
const farMonth = addMonths(thisMonth, 24);
const fartherMonth = addMonths(thisMonth, 37);

async function fingerprint(c: Client) {
  const r = await c.query<{ n: string; md5: string }>(
    `SELECT count(*)::text AS n, md5(string_agg(id::text || created_at::text, ',' ORDER BY id)) AS md5 FROM user_behaviors`,
  );
  return r.rows[0]!;
}

/** Everything cleanup could change: relations, partition tree, databases, recommendation lists. */
async function catalogState() {
  const inDb = await db(async (c) => {
    const rels = await c.query<{ r: string }>(
      `SELECT string_agg(c.relname || ':' || c.relkind::text || ':' || coalesce(pg_get_expr(c.relpartbound, c.oid), ''), ',' ORDER BY c.relname) AS r
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'`,
    );
    const lists = await c.query<{ n: string }>('SELECT count(*)::text AS n FROM recommendation_lists');
    return { rels: rels.rows[0]!.r, lists: lists.rows[0]!.n, ...(await fingerprint(c)) };
  });
  // Cleanup only considers databases named after its target; other test files create and drop
  // their own databases meanwhile.
  const dbs = await admin((c) =>
    c.query<{ d: string }>(
      `SELECT string_agg(datname, ',' ORDER BY datname) AS d FROM pg_database WHERE starts_with(datname, $1)`,
      [database],
    ),
  );
  return { ...inDb, databases: dbs.rows[0]!.d };
}

async function partitionNames(c: Client): Promise<string[]> {
  const r = await c.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'user_behaviors'::regclass ORDER BY 1`,
  );
  return r.rows.map((row) => row.name);
}

let tw: TestWorker;
const leftover = verifyScratchDatabaseName(database, new Date('2020-01-01T00:00:00Z'));

beforeAll(async () => {
  await admin((c) => c.query(`CREATE DATABASE ${database}`));
  await migrateFn({ pg: config.pg, migrations: config.migrations })(database);
  await db(async (c) => {
    await c.query(
      `INSERT INTO users (id, name, email, password_hash) VALUES ('00000000-0000-0000-0000-000000000001', 'u', 'u@example.com', 'x')`,
    );
    await c.query(
      `INSERT INTO items (id, type, title) VALUES ('00000000-0000-0000-0000-000000000002', 'movie', 'm')`,
    );
    // Normal rows in this month's partition, and far-future rows that land in DEFAULT.
    const row = (ts: string) =>
      `INSERT INTO user_behaviors (user_id, item_id, action, created_at)
       SELECT '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000002', 'view',
              ${ts} FROM generate_series(1, $1) g`;
    await c.query(row(`now() - (g || ' seconds')::interval`), [500]);
    await c.query(row(`'${farMonth}-01'::timestamptz + (g || ' seconds')::interval`), [4_500]);
    await c.query(row(`'${farMonth}-01'::timestamptz`), [3]); // same timestamp, different ids
    await c.query(row(`'${fartherMonth}-15 12:00:00+00'::timestamptz`), [7]);
    // Expired and live recommendation lists.
    await c.query(
      `INSERT INTO recommendation_lists (user_id, model_name, model_version, strategy, created_at, expires_at)
       SELECT '00000000-0000-0000-0000-000000000001', 'gen', 'v1', 'generative', now() - interval '3 days', now() - interval '1 day'
         FROM generate_series(1, 25)`,
    );
    await c.query(
      `INSERT INTO recommendation_lists (user_id, model_name, model_version, strategy)
       VALUES ('00000000-0000-0000-0000-000000000001', 'gen', 'v1', 'generative')`,
    );
  });
  await admin((c) => c.query(`CREATE DATABASE ${leftover}`));
  // As a verification leaves it: cleanup drops only what carries dbops' mark.
  const mark = { dbops: 'verify', workflowId: `verify-${leftover}`, createdAt: '2020-01-01T00:00:00Z' };
  await admin((c) => c.query(`COMMENT ON DATABASE ${leftover} IS '${JSON.stringify(mark)}'`));
  tw = await startTestWorker(config);
}, 120_000);

afterAll(async () => {
  await tw?.stop();
  await admin(async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await c.query(`DROP DATABASE IF EXISTS ${leftover} WITH (FORCE)`);
  });
  rmSync(backupDir, { recursive: true, force: true });
});

describe('partition maintenance workflow', () => {
  it('drains DEFAULT into new partitions without losing or duplicating a row, and refuses retention without a verified backup', async () => {
    const before = await db(fingerprint);
    const inDefault = await db((c) =>
      c.query<{ n: string }>('SELECT count(*)::text AS n FROM user_behaviors_default'),
    );
    expect(Number(inDefault.rows[0]!.n)).toBe(4_510);

    // What `dbops partitions maintain` does; a second start the same day attaches to the same run.
    const input = { ...maintenanceInput(config, database), batchRows: 1_000 };
    const first = await startPartitionMaintenance(tw.client, config, input);
    const second = await startPartitionMaintenance(tw.client, config, input);
    expect(first.workflowId).toBe(partitionMaintenanceWorkflowId(database, new Date()));
    expect(first.alreadyStarted).toBe(false);
    expect(second.workflowId).toBe(first.workflowId);
    const result = (await tw.client.workflow
      .getHandle(first.workflowId, first.runId)
      .result()) as PartitionMaintenanceResult;
    if (!second.alreadyStarted) {
      // The first run finished before the second start: that one ran again and found nothing to do.
      const again = (await tw.client.workflow
        .getHandle(second.workflowId, second.runId)
        .result()) as PartitionMaintenanceResult;
      expect(again.drained.rows).toBe(0);
    }

    expect(result.drained.rows).toBe(4_510);
    expect(result.drained.moved.map((m) => [m.partition, m.rows])).toEqual([
      [partitionName(farMonth), 4_503],
      [partitionName(fartherMonth), 7],
    ]);
    expect(result.drained.moved[0]!.batches).toBeGreaterThan(1); // batched: about 1000 rows per batch
    // V002 made 3 months ahead already; nothing to premake within 3 months.
    expect(result.created).toEqual([]);
    // Past-retention partitions exist (V002 made 12 months back) but no backup is verified: all refused.
    expect(result.retention.decisions.length).toBe(12 - RETENTION_MONTHS);
    expect(result.retention.decisions.every((d) => d.action === 'refuse' && !d.done)).toBe(true);
    expect(result.retention.decisions[0]!.reason).toMatch(/no verified backup/);

    await db(async (c) => {
      expect(await fingerprint(c)).toEqual(before);
      const def = await c.query<{ n: string }>('SELECT count(*)::text AS n FROM user_behaviors_default');
      expect(def.rows[0]!.n).toBe('0');
      const names = await partitionNames(c);
      expect(names).toContain(partitionName(farMonth));
      expect(names).toContain(partitionName(fartherMonth));
      const far = await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${partitionName(farMonth)}`);
      expect(far.rows[0]!.n).toBe('4503');
      // The new partition got the parent's indexes (primary key included) when attached.
      const idx = await c.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM pg_indexes WHERE tablename = $1`,
        [partitionName(farMonth)],
      );
      expect(Number(idx.rows[0]!.n)).toBeGreaterThanOrEqual(5);
      // A new far-future row now routes to its partition, not DEFAULT.
      await c.query(
        `INSERT INTO user_behaviors (user_id, item_id, action, created_at)
         VALUES ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000002', 'like', '${farMonth}-20')`,
      );
      const routed = await c.query<{ t: string }>(
        `SELECT tableoid::regclass::text AS t FROM user_behaviors WHERE action = 'like'`,
      );
      expect(routed.rows[0]!.t).toBe(partitionName(farMonth));
    });
  }, 90_000);
});

describe('db cleanup', () => {
  // Expired months: thisMonth-12 .. thisMonth-7. A verified backup taken at the start of
  // thisMonth-9 covers -12..-10; -9..-7 end after it and must be refused.
  const coveredUpTo = addMonths(thisMonth, -9);

  it('dry run changes nothing', async () => {
    const store = createBackupStore(config.storage);
    try {
      const put = async (time: Date, verification?: 'passed' | 'failed') => {
        const id = makeBackupId(database, time);
        await store.putJson(manifestKey(database, id), { manifestVersion: 1, id, database });
        if (verification) {
          await store.putJson(verificationKey(database, id), {
            status: verification,
            checkedAt: time.toISOString(),
          });
        }
      };
      await put(monthStart(coveredUpTo), 'passed');
      // Newer backups that do not count: never verified, and failed verification.
      await put(monthStart(addMonths(thisMonth, -1)));
      await put(monthStart(addMonths(thisMonth, -2)), 'failed');
    } finally {
      await store.close();
    }

    const before = await catalogState();
    const rows = await runCleanup(config, { database, dryRun: true });
    const after = await catalogState();
    expect(after).toEqual(before);
    expect(rows.filter((r) => r.action === 'drop' && r.step === 'partition retention')).toHaveLength(3);
    expect(rows.find((r) => r.step === 'expired recommendations')!.result).toMatch(/^25 expired/);
    expect(rows.find((r) => r.object === leftover)!.result).toMatch(/^would drop/);
  }, 60_000);

  it('drops only partitions a verified backup covers, refuses the rest, deletes expired lists and leftover databases', async () => {
    const before = await db(fingerprint);
    const rows = await runCleanup(config, { database, dryRun: false });
    const retention = rows.filter((r) => r.step === 'partition retention');
    const dropped = retention.filter((r) => r.action === 'drop').map((r) => r.object);
    const refused = retention.filter((r) => r.action === 'refuse').map((r) => r.object);
    expect(dropped).toEqual([-12, -11, -10].map((n) => partitionName(addMonths(thisMonth, n))));
    expect(refused).toEqual([-9, -8, -7].map((n) => partitionName(addMonths(thisMonth, n))));
    expect(retention.find((r) => r.action === 'refuse')!.result).toMatch(/REFUSED: .*newest verified backup/);

    await db(async (c) => {
      const names = await partitionNames(c);
      for (const p of dropped) expect(names).not.toContain(p);
      for (const p of refused) expect(names).toContain(p);
      const exists = await c.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM pg_class WHERE relname = ANY($1)`,
        [dropped],
      );
      expect(exists.rows[0]!.n).toBe('0');
      // The dropped months were empty: every row is still there.
      expect(await fingerprint(c)).toEqual(before);
      const lists = await c.query<{ n: string }>('SELECT count(*)::text AS n FROM recommendation_lists');
      expect(lists.rows[0]!.n).toBe('1');
    });
    const dbs = await admin((c) => c.query('SELECT 1 FROM pg_database WHERE datname = $1', [leftover]));
    expect(dbs.rowCount).toBe(0);
    expect(rows.find((r) => r.step === 'vacuum')?.result).toBe('done');
  }, 60_000);
});

describe('daily schedule', () => {
  it('a triggered run of the partition maintenance schedule runs the workflow for its database', async () => {
    const scheduled = testConfig({
      DBOPS_TASK_QUEUE: config.temporal.taskQueue,
      DBOPS_BACKUP_DIR: backupDir,
      DBOPS_PARTITION_RETENTION_MONTHS: String(RETENTION_MONTHS),
      DBOPS_DATABASES: database,
    });
    const [options] = partitionMaintenanceSchedules(scheduled);
    expect(options!.scheduleId).toBe(`partition-maintenance-${database}`);
    const handle = await tw.client.schedule.create({ ...options!, state: { paused: true } });
    try {
      await handle.trigger();
      let workflowId: string | undefined;
      for (let i = 0; i < 100 && !workflowId; i++) {
        const d = await handle.describe();
        workflowId = d.info.recentActions[0]?.action.workflow.workflowId;
        if (!workflowId) await new Promise((r) => setTimeout(r, 100));
      }
      expect(workflowId).toMatch(new RegExp(`^partition-maintenance-${database}-`));
      const result = (await tw.client.workflow.getHandle(workflowId!).result()) as PartitionMaintenanceResult;
      expect(result.database).toBe(database);
      expect(result.drained.rows).toBe(0);
    } finally {
      await handle.delete();
    }
  }, 60_000);
});
