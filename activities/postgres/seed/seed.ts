import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { failure, FailureType } from '../../../common/failures';
import { quoteIdent, withPg, type PgConnectionSettings } from '../connection';
import { Behaviors } from './behaviors';
import { itemStatsRows, userProfileRows } from './derived';
import {
  impressionRows,
  itemEmbeddingRows,
  itemRows,
  recommendationItemRows,
  recommendationListRows,
  userEmbeddingRows,
  userRows,
  type TableRows,
} from './rows';
import { planSeed, World, type SeedPlan } from './world';

export interface SeedOptions {
  readonly scale: number;
  readonly seed: number;
  readonly months: number;
  /** Fixes "now" (tests); default the current time. */
  readonly now?: Date;
  readonly onProgress?: (p: SeedProgress) => void;
}

export interface SeedProgress {
  readonly table: string;
  readonly rows: number;
  /** Rows of all tables, done and planned. */
  readonly doneRows: number;
  readonly totalRows: number;
}

export interface SeedResult {
  readonly database: string;
  readonly plan: SeedPlan;
  readonly rows: Record<string, number>;
  readonly totalRows: number;
  /** The load phase: every COPY, and the HNSW index built meanwhile. */
  readonly copyMs: number;
  /** Time per table's COPY, per index build and ANALYZE (summed over both connections). */
  readonly tableMs: Record<string, number>;
  readonly totalMs: number;
  readonly rowsPerSecond: number;
  readonly databaseBytes: number;
}

/** Every table the seed fills (all of them reference only each other). */
const SEEDED_TABLES = [
  'users',
  'items',
  'user_behaviors',
  'item_embeddings',
  'user_embeddings',
  'recommendation_lists',
  'recommendation_items',
  'recommendation_impressions',
  'item_stats',
  'user_profiles',
];
const REQUIRED_TABLES = [
  'users',
  'items',
  'user_behaviors',
  'recommendation_lists',
  'item_embeddings',
  'user_embeddings',
];
const HNSW_INDEX = 'idx_item_embeddings_hnsw';

export function validateSeedOptions(o: { scale: number; seed: number; months: number }): void {
  if (!Number.isFinite(o.scale) || o.scale <= 0 || o.scale > 100) {
    throw failure(
      FailureType.InvalidInput,
      `--scale ${o.scale} must be a number > 0 and <= 100 (1 = 100k users, 5M behaviors)`,
    );
  }
  if (!Number.isInteger(o.seed) || o.seed < 0 || o.seed > 2 ** 31) {
    throw failure(FailureType.InvalidInput, `--seed ${o.seed} must be an integer 0..2147483648`);
  }
  if (!Number.isInteger(o.months) || o.months < 1 || o.months > 60) {
    throw failure(FailureType.InvalidInput, `--months ${o.months} must be an integer 1..60`);
  }
}

async function assertReady(c: Client, database: string): Promise<void> {
  for (const table of REQUIRED_TABLES) {
    const r = await c.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [table]);
    if (!r.rows[0]?.t) {
      throw failure(
        FailureType.Misconfigured,
        `database ${database} is not migrated (no table ${table}): run \`dbops migrate --database ${database}\` first`,
      );
    }
  }
  const n = await c.query<{ n: number }>(
    'SELECT (SELECT count(*) FROM (SELECT 1 FROM users LIMIT 1) u)::int + (SELECT count(*) FROM (SELECT 1 FROM items LIMIT 1) i)::int AS n',
  );
  if ((n.rows[0]?.n ?? 0) > 0) {
    throw failure(
      FailureType.Refused,
      `database ${database} already has users or items: seed only a freshly migrated, empty database (drop and recreate it, or choose another --database)`,
    );
  }
}

/**
 * Maintaining B-tree/GIN/HNSW indexes row by row costs far more than building them once after the
 * load (random UUID keys touch a new page per row). Drops the table's indexes and its primary key
 * if nothing references it, and returns the statements that recreate them with the same names and
 * definitions. On a partitioned table, dropping the parent index drops the partitions' indexes, and
 * a plain CREATE INDEX on the parent builds one on every partition, attached and valid.
 */
interface DroppedIndex {
  readonly table: string;
  readonly name: string;
  readonly constraint: boolean;
  readonly create: string;
}

async function dropIndexes(c: Client, table: string): Promise<DroppedIndex[]> {
  const r = await c.query<{ name: string; def: string; con: string | null; condef: string | null }>(
    `SELECT i.relname AS name, pg_get_indexdef(x.indexrelid) AS def, con.conname AS con,
            pg_get_constraintdef(con.oid) AS condef
       FROM pg_index x
       JOIN pg_class i ON i.oid = x.indexrelid
       LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid AND con.conrelid = x.indrelid
      WHERE x.indrelid = $1::regclass
        AND (con.oid IS NULL OR (con.contype = 'p' AND NOT EXISTS (
              SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.confrelid = x.indrelid)))
      ORDER BY i.relname`,
    [table],
  );
  const dropped: DroppedIndex[] = [];
  for (const row of r.rows) {
    if (row.con && row.condef) {
      await c.query(`ALTER TABLE ${quoteIdent(table)} DROP CONSTRAINT ${quoteIdent(row.con)}`);
      const create = `ALTER TABLE ${quoteIdent(table)} ADD CONSTRAINT ${quoteIdent(row.con)} ${row.condef}`;
      dropped.push({ table, name: row.con, constraint: true, create });
    } else {
      await c.query(`DROP INDEX ${quoteIdent(row.name)}`);
      dropped.push({
        table,
        name: row.name,
        constraint: false,
        create: row.def.replace(/ ON ONLY /, ' ON '),
      });
    }
  }
  return dropped;
}

/** After a failure: recreates whichever dropped indexes do not exist (the tables are empty by then). */
async function restoreIndexes(c: Client, dropped: readonly DroppedIndex[]): Promise<void> {
  for (const d of dropped) {
    const exists = d.constraint
      ? await c.query('SELECT 1 FROM pg_constraint WHERE conrelid = $1::regclass AND conname = $2', [
          d.table,
          d.name,
        ])
      : await c.query('SELECT 1 FROM pg_class WHERE oid = to_regclass($1)', [d.name]);
    if (!exists.rowCount) await c.query(d.create);
  }
}

/**
 * Autovacuum would otherwise vacuum and analyze the tables as soon as a load commits, while the
 * indexes are being built, and the seed analyzes them itself: switched off for the seed's tables
 * (and partitions) meanwhile. Returns the statements that put each table's setting back.
 */
async function pauseAutovacuum(c: Client): Promise<string[]> {
  const r = await c.query<{ t: string; opts: string[] | null }>(
    `SELECT c.oid::regclass::text AS t, c.reloptions AS opts FROM pg_class c
      WHERE c.relkind = 'r' AND (c.oid = ANY($1::regclass[])
         OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'user_behaviors'::regclass))`,
    [SEEDED_TABLES],
  );
  const restore: string[] = [];
  for (const { t, opts } of r.rows) {
    const before = (opts ?? []).find((o) => o.startsWith('autovacuum_enabled='));
    await c.query(`ALTER TABLE ${t} SET (autovacuum_enabled = false)`);
    restore.push(before ? `ALTER TABLE ${t} SET (${before})` : `ALTER TABLE ${t} RESET (autovacuum_enabled)`);
  }
  return restore;
}

/** Thrown in a lane that stops because another one failed (whose error is the one to report). */
class LaneAborted extends Error {
  constructor() {
    super('seed aborted: another COPY connection failed');
  }
}

/**
 * Streams one table's rows into COPY (backpressure via pipeline). A FREEZE target is emptied in
 * this transaction first (it is empty already): COPY then writes its rows frozen and all-visible.
 */
async function copyTable(
  c: Client,
  rows: TableRows,
  onRows: (n: number) => void,
  aborted: () => boolean,
): Promise<void> {
  function* chunks() {
    for (const chunk of rows.chunks()) {
      if (aborted()) throw new LaneAborted();
      yield chunk.data;
      onRows(chunk.rows);
    }
  }
  const options = [rows.binary ? 'FORMAT binary' : '', rows.freeze ? 'FREEZE' : ''].filter(Boolean);
  if (rows.freeze) await c.query(`TRUNCATE ${quoteIdent(rows.target)}`);
  const sql = `COPY ${quoteIdent(rows.target)} (${rows.columns.join(', ')}) FROM STDIN${options.length ? ` WITH (${options.join(', ')})` : ''}`;
  await pipeline(Readable.from(chunks(), { objectMode: false }), c.query(copyFrom(sql)));
}

async function bulkSession(c: Client, superuser: boolean): Promise<void> {
  // The generator keeps references consistent; skipping per-row FK triggers doubles COPY speed.
  if (superuser) await c.query('SET LOCAL session_replication_role = replica');
  await c.query('SET LOCAL synchronous_commit = off');
  await c.query("SET LOCAL maintenance_work_mem = '256MB'");
  // Two connections on two cores are busy already: a parallel index build only adds contention.
  await c.query('SET LOCAL max_parallel_maintenance_workers = 0');
}

/**
 * One behaviors index, built on one partition: the same definition, named by the server. A later
 * CREATE INDEX (or ADD PRIMARY KEY) on the parent finds it and attaches it instead of building.
 */
function partitionIndex(d: DroppedIndex, partition: string): string {
  if (d.constraint) {
    const def = /^ALTER TABLE \S+ ADD CONSTRAINT \S+ (.*)$/.exec(d.create)?.[1];
    if (!def) throw new Error(`unexpected constraint definition: ${d.create}`);
    return `ALTER TABLE ${quoteIdent(partition)} ADD ${def}`;
  }
  const m = /^CREATE (UNIQUE )?INDEX \S+ ON (?:ONLY )?\S+ (USING .*)$/.exec(d.create);
  if (!m) throw new Error(`unexpected index definition: ${d.create}`);
  return `CREATE ${m[1] ?? ''}INDEX ON ${quoteIdent(partition)} ${m[2]}`;
}

/**
 * Fills an empty, migrated database with deterministic synthetic data, on two connections at once
 * (two cores: the generator is one thread, the server's COPY and index builds the rest):
 * 1. one transaction drops the seeded tables' indexes (building them once after the load is far
 *    cheaper than maintaining them row by row), pauses autovacuum on the seeded tables, commits;
 * 2. each connection takes the next load from a shared queue, in its own transaction: the
 *    behaviors straight into their monthly partitions (binary COPY ... FREEZE), the embeddings
 *    (binary; the HNSW index is built right after the item embeddings, while the other connection
 *    keeps loading), the other tables, and last item_stats and user_profiles, written from the
 *    totals the behavior generator kept (no SQL pass over the behaviors);
 * 3. both connections take groups of work, each one transaction: a partition's indexes and
 *    its ANALYZE, the parent's ANALYZE, each other table's indexes and ANALYZE; one transaction
 *    then recreates the behaviors' parent indexes (which attaches the partitions' ones) and
 *    resumes autovacuum.
 * If anything fails, the seeded tables are emptied and the indexes and autovacuum restored: the
 * database is as migrated again.
 */
export async function seedDatabase(
  pg: PgConnectionSettings,
  database: string,
  opts: SeedOptions,
): Promise<SeedResult> {
  validateSeedOptions(opts);
  const started = Date.now();
  const world = new World(planSeed(opts));
  const { plan } = world;
  const behaviors = new Behaviors(world);
  // Work for the two connections, taken in this order by whichever is free: balanced loads.
  const loads: TableRows[] = [
    itemEmbeddingRows(world),
    ...behaviors.months,
    userRows(world),
    itemRows(world),
    userEmbeddingRows(world),
    recommendationListRows(world),
    recommendationItemRows(world),
    impressionRows(world),
  ];
  // These need every behavior generated first.
  const derived = [itemStatsRows(world, behaviors.totals), userProfileRows(world, behaviors.totals)];
  const totalRows = [...loads, ...derived].reduce((s, t) => s + t.total, 0);
  const counts: Record<string, number> = {};
  const tableMs: Record<string, number> = {};
  let done = 0;
  let copyMs = 0;
  let failed = false;

  await withPg(pg, database, async (c) => {
    await assertReady(c, database);
    const superuser = !!(
      await c.query<{ s: boolean }>('SELECT rolsuper AS s FROM pg_roles WHERE rolname = current_user')
    ).rows[0]?.s;
    await c.query('BEGIN');
    await c.query(
      "SELECT count(*) FROM ensure_behavior_partitions(($1::timestamptz AT TIME ZONE 'UTC')::date, $2)",
      [new Date(plan.windowStartMs).toISOString(), plan.months],
    );
    const dropped: DroppedIndex[] = [];
    for (const table of SEEDED_TABLES) dropped.push(...(await dropIndexes(c, table)));
    const resumeAutovacuum = await pauseAutovacuum(c);
    await c.query('COMMIT');
    // Each lane: its own connection and transaction; the first failure stops the others.
    const inTransaction = (fn: (lc: Client) => Promise<void>) =>
      withPg(pg, database, async (lc) => {
        await lc.query('BEGIN');
        try {
          await bulkSession(lc, superuser);
          await fn(lc);
          await lc.query('COMMIT');
        } catch (err) {
          failed = true;
          await lc.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      });
    const allLanes = async (fns: ((lc: Client) => Promise<void>)[]) => {
      const errors = (await Promise.allSettled(fns.map(inTransaction)))
        .filter((r) => r.status === 'rejected')
        .map((r) => r.reason as unknown);
      if (errors.length) throw errors.find((e) => !(e instanceof LaneAborted)) ?? errors[0];
    };
    const progress = (table: string) => (n: number) => {
      counts[table] = (counts[table] ?? 0) + n;
      done += n;
      opts.onProgress?.({ table, rows: counts[table], doneRows: done, totalRows });
    };
    const timed = async (key: string, fn: () => Promise<unknown>) => {
      const t0 = Date.now();
      await fn();
      tableMs[key] = (tableMs[key] ?? 0) + Date.now() - t0;
    };
    const copy = (lc: Client, t: TableRows) =>
      timed(t.table, () => copyTable(lc, t, progress(t.table), () => failed));
    try {
      const copyStarted = Date.now();
      const hnsw = dropped.find((d) => d.name === HNSW_INDEX);
      let monthsLeft = behaviors.months.length;
      let next = 0;
      const takeLoads = async (lc: Client) => {
        for (let t = loads[next++]; t; t = loads[next++]) {
          await copy(lc, t);
          if (t.table === 'user_behaviors') monthsLeft--;
          // The HNSW graph takes long to build: while the other connection keeps loading.
          if (t.table === 'item_embeddings' && hnsw)
            await timed(`index ${hnsw.name}`, () => lc.query(hnsw.create));
        }
        // item_stats and user_profiles: once the other lane has generated its last month too.
        while (monthsLeft > 0) {
          if (failed) throw new LaneAborted();
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        for (let t = derived.shift(); t; t = derived.shift()) await copy(lc, t);
      };
      await allLanes([takeLoads, takeLoads]);
      copyMs = Date.now() - copyStarted;
      opts.onProgress?.({ table: 'indexes', rows: 0, doneRows: done, totalRows });
      // The sessions that ran past their month's end, through the parent (a few rows).
      const spill = behaviors.spill();
      if (spill.total) await allLanes([(lc) => copy(lc, spill)]);
      // Every index and the statistics: the behaviors' partition by partition, the other tables'
      // table by table, on both connections. Each group is one transaction (so no connection
      // holds a lock another one waits for).
      const behaviorIndexes = dropped.filter((d) => d.table === 'user_behaviors');
      const others = dropped.filter((d) => d.table !== 'user_behaviors' && d !== hnsw);
      const monthParts = new Set(behaviors.months.map((m) => m.target));
      const leaves = await c.query<{ t: string }>(
        "SELECT inhrelid::regclass::text AS t FROM pg_inherits WHERE inhparent = 'user_behaviors'::regclass",
      );
      // (ANALYZE ONLY, 17+: the partitions are analyzed in their own groups.)
      const version = Number(
        (await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]?.v,
      );
      const analyze = (table: string) => ({ name: `analyze ${table}`, sql: `ANALYZE ${quoteIdent(table)}` });
      type Group = { name: string; sql: string }[] & { afterPartitions?: boolean; partition?: boolean };
      const partitionGroup = (g: { name: string; sql: string }[]): Group =>
        Object.assign(g, { partition: true });
      const groups: Group[] = [
        ...behaviors.months.map((m) =>
          partitionGroup([
            ...behaviorIndexes.map((d) => ({ name: `index ${d.name}`, sql: partitionIndex(d, m.target) })),
            analyze(m.target),
          ]),
        ),
        partitionGroup(leaves.rows.filter((r) => !monthParts.has(r.t)).map((r) => analyze(r.t))),
        // The parent's own statistics (a sample across the partitions): once every partition's
        // group is done (it would deadlock with their locks), alongside the small tables' groups.
        Object.assign(
          [{ name: 'analyze', sql: `ANALYZE ${version >= 170000 ? 'ONLY ' : ''}user_behaviors` }],
          {
            afterPartitions: true,
          },
        ),
        ...SEEDED_TABLES.filter((t) => t !== 'user_behaviors').map((table) => [
          ...others.filter((d) => d.table === table).map((d) => ({ name: `index ${d.name}`, sql: d.create })),
          analyze(table),
        ]),
      ];
      let partitionGroupsLeft = groups.filter((g) => g.partition).length;
      const takeGroups = async () => {
        for (let g = groups.shift(); g; g = groups.shift()) {
          while (g.afterPartitions && partitionGroupsLeft > 0) {
            if (failed) throw new LaneAborted();
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          if (failed) throw new LaneAborted();
          await inTransaction(async (lc) => {
            for (const b of g) await timed(b.name, () => lc.query(b.sql));
          });
          if (g.partition) partitionGroupsLeft--;
        }
      };
      const errors = (await Promise.allSettled([takeGroups(), takeGroups()]))
        .filter((r) => r.status === 'rejected')
        .map((r) => r.reason as unknown);
      if (errors.length) throw errors.find((e) => !(e instanceof LaneAborted)) ?? errors[0];
      // The parents' indexes: each attaches the partitions' (and builds the empty partitions').
      await c.query('BEGIN');
      for (const d of behaviorIndexes) await timed(`index ${d.name}`, () => c.query(d.create));
      for (const sql of resumeAutovacuum) await c.query(sql);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      await c.query('BEGIN');
      await c.query(`TRUNCATE ${SEEDED_TABLES.map(quoteIdent).join(', ')}`);
      await restoreIndexes(c, dropped);
      for (const sql of resumeAutovacuum) await c.query(sql);
      await c.query('COMMIT');
      throw err;
    }
  });
  const size = await withPg(pg, database, (c) =>
    c.query<{ b: string }>('SELECT pg_database_size(current_database())::text AS b'),
  );
  const totalMs = Date.now() - started;
  return {
    database,
    plan,
    rows: counts,
    totalRows,
    copyMs,
    tableMs,
    totalMs,
    rowsPerSecond: Math.round(totalRows / (totalMs / 1000)),
    databaseBytes: Number(size.rows[0]?.b ?? 0),
  };
}
