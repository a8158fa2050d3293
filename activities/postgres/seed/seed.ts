import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { failure, FailureType } from '../../../common/failures';
import { quoteIdent, withPg, type PgConnectionSettings } from '../connection';
import { ITEM_STATS_SQL, USER_PROFILES_SQL } from './derived';
import {
  behaviorRows,
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
  readonly copyMs: number;
  /** Time per table (COPY, or the derived-table SQL). */
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
const CHUNK_LINES = 2000;
/** Behaviors are loaded in this many pieces (days interleaved), so both connections stay busy. */
const BEHAVIOR_PARTS = 6;

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

/** Thrown in a lane that stops because another one failed (whose error is the one to report). */
class LaneAborted extends Error {
  constructor() {
    super('seed aborted: another COPY connection failed');
  }
}

/** Streams one table's rows into COPY in chunks (backpressure via pipeline). */
async function copyTable(
  c: Client,
  rows: TableRows,
  onRows: (n: number) => void,
  aborted: () => boolean,
): Promise<void> {
  function* chunks() {
    let buf = '';
    let n = 0;
    for (const line of rows.lines()) {
      buf += line;
      if (++n === CHUNK_LINES) {
        if (aborted()) throw new LaneAborted();
        yield buf;
        onRows(n);
        buf = '';
        n = 0;
      }
    }
    if (n) {
      yield buf;
      onRows(n);
    }
  }
  const sql = `COPY ${rows.table} (${rows.columns.join(', ')}) FROM STDIN`;
  await pipeline(Readable.from(chunks(), { objectMode: false }), c.query(copyFrom(sql)));
}

async function bulkSession(c: Client, superuser: boolean): Promise<void> {
  // The generator keeps references consistent; skipping per-row FK triggers doubles COPY speed.
  if (superuser) await c.query('SET LOCAL session_replication_role = replica');
  await c.query('SET LOCAL synchronous_commit = off');
  await c.query("SET LOCAL maintenance_work_mem = '256MB'");
  // The derived tables aggregate every behavior: hash aggregates spill to disk at the 4MB default.
  await c.query("SET LOCAL work_mem = '128MB'");
}

/**
 * Fills an empty, migrated database with deterministic synthetic data. The load runs on two
 * connections at once (one per core; the server is the bottleneck), so it cannot be one
 * transaction: indexes are dropped and committed first, each connection loads its tables in its
 * own transaction, then one transaction rebuilds the indexes and computes the derived tables
 * (item_stats, user_profiles) from the behaviors. If anything fails, the seeded tables are
 * emptied and the indexes recreated: the database is as migrated again.
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
  // Work for the two connections, taken in this order by whichever is free: balanced loads.
  const tasks = [
    userRows(world),
    itemRows(world),
    ...Array.from({ length: BEHAVIOR_PARTS }, (_, part) => behaviorRows(world, part, BEHAVIOR_PARTS)),
    userEmbeddingRows(world),
    itemEmbeddingRows(world),
    recommendationListRows(world),
    recommendationItemRows(world),
    impressionRows(world),
  ];
  const derivedRows = plan.users + plan.items; // user_profiles + item_stats
  const totalRows = tasks.reduce((s, t) => s + t.total, 0) + derivedRows;
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
    const rebuild = async (lc: Client, tables: (t: string) => boolean) => {
      for (const d of dropped) if (tables(d.table)) await timed(`index ${d.name}`, () => lc.query(d.create));
    };
    try {
      const copyStarted = Date.now();
      let next = 0;
      const takeTasks = async (lc: Client) => {
        for (let t = tasks[next++]; t; t = tasks[next++])
          await timed(t.table, () => copyTable(lc, t, progress(t.table), () => failed));
      };
      await allLanes([takeTasks, takeTasks]);
      copyMs = Date.now() - copyStarted;
      opts.onProgress?.({ table: 'indexes, item_stats, user_profiles', rows: 0, doneRows: done, totalRows });
      // Four connections: the behaviors' indexes (primary key last: it locks the table, so it
      // waits for the derived tables' scans); item_stats, then its key; user_profiles, then its
      // key; the other tables' indexes.
      await allLanes([
        (lc) => rebuild(lc, (t) => t === 'user_behaviors'),
        async (lc) => {
          await timed('item_stats', () => lc.query(ITEM_STATS_SQL));
          await rebuild(lc, (t) => t === 'item_stats');
        },
        async (lc) => {
          // The per-user aggregate is a temp table of millions of rows: keep it in memory.
          await lc.query("SET LOCAL temp_buffers = '512MB'");
          for (const sql of USER_PROFILES_SQL) await timed('user_profiles', () => lc.query(sql));
          await rebuild(lc, (t) => t === 'user_profiles');
        },
        (lc) => rebuild(lc, (t) => !['user_behaviors', 'item_stats', 'user_profiles'].includes(t)),
      ]);
      counts.item_stats = plan.items;
      counts.user_profiles = plan.users;
      done += derivedRows;
      opts.onProgress?.({ table: 'item_stats, user_profiles', rows: derivedRows, doneRows: done, totalRows });
    } catch (err) {
      await c.query('BEGIN');
      await c.query(`TRUNCATE ${SEEDED_TABLES.map(quoteIdent).join(', ')}`);
      await restoreIndexes(c, dropped);
      await c.query('COMMIT');
      throw err;
    }
    await c.query('ANALYZE');
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
