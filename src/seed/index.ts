/**
 * The seed-data generator behind `dbops db seed` (and bench/seed.ts): deterministic synthetic data
 * for a migrated database, loaded on two connections. Not an activity: the CLI runs it in-process.
 */
import type { Client } from 'pg';
import { failure, FailureType } from '../../common/failures';
import { quoteIdent, withPg, type PgConnectionSettings } from '../../activities/postgres/connection';
import { Behaviors } from './behaviors';
import { itemStatsRows, userProfileRows } from './derived';
import {
  buildIndexes,
  type DroppedIndex,
  dropIndexes,
  pauseAutovacuum,
  restoreIndexes,
  SEEDED_TABLES,
} from './indexes';
import { copyTable, Lanes } from './lanes';
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

const REQUIRED_TABLES = [
  'users',
  'items',
  'user_behaviors',
  'recommendation_lists',
  'item_embeddings',
  'user_embeddings',
];

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

const HNSW_INDEX = 'idx_item_embeddings_hnsw';

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
  let done = 0;
  const progress = (table: string) => (n: number) => {
    counts[table] = (counts[table] ?? 0) + n;
    done += n;
    opts.onProgress?.({ table, rows: counts[table], doneRows: done, totalRows });
  };
  let copyMs = 0;
  const tableMs: Record<string, number> = {};

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
    const lanes = new Lanes(pg, database, superuser, tableMs);
    const copy = (lc: Client, t: TableRows) =>
      lanes.timed(t.table, () => copyTable(lc, t, progress(t.table), () => lanes.failed));
    try {
      const copyStarted = Date.now();
      const hnsw = dropped.find((d) => d.name === HNSW_INDEX);
      await loadTables(lanes, copy, { loads, derived, months: behaviors.months.length, hnsw });
      copyMs = Date.now() - copyStarted;
      opts.onProgress?.({ table: 'indexes', rows: 0, doneRows: done, totalRows });
      // The sessions that ran past their month's end, through the parent (a few rows).
      const spill = behaviors.spill();
      if (spill.total) await lanes.all([(lc) => copy(lc, spill)]);
      await buildIndexes(c, lanes, behaviors.months, dropped, hnsw);
      // The parents' indexes: each attaches the partitions' (and builds the empty partitions').
      await c.query('BEGIN');
      for (const d of dropped.filter((x) => x.table === 'user_behaviors'))
        await lanes.timed(`index ${d.name}`, () => c.query(d.create));
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

/**
 * Step 2: both lanes take the next load from the shared queue, each in its own transaction; the
 * HNSW index is built right after the item embeddings, while the other lane keeps loading; last,
 * item_stats and user_profiles, once every month of behaviors is generated.
 */
async function loadTables(
  lanes: Lanes,
  copy: (lc: Client, t: TableRows) => Promise<void>,
  work: { loads: TableRows[]; derived: TableRows[]; months: number; hnsw: DroppedIndex | undefined },
): Promise<void> {
  const { loads, derived, hnsw } = work;
  let monthsLeft = work.months;
  let next = 0;
  const takeLoads = async (lc: Client) => {
    for (let t = loads[next++]; t; t = loads[next++]) {
      await copy(lc, t);
      if (t.table === 'user_behaviors') monthsLeft--;
      // The HNSW graph takes long to build: while the other connection keeps loading.
      if (t.table === 'item_embeddings' && hnsw)
        await lanes.timed(`index ${hnsw.name}`, () => lc.query(hnsw.create));
    }
    // item_stats and user_profiles: once the other lane has generated its last month too.
    await lanes.waitFor(() => monthsLeft <= 0);
    for (let t = derived.shift(); t; t = derived.shift()) await copy(lc, t);
  };
  await lanes.all([takeLoads, takeLoads]);
}
