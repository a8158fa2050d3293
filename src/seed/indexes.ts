import type { Client } from 'pg';
import { quoteIdent } from '../../activities/postgres/connection';
import { firstFailure, type Lanes } from './lanes';

/** Every table the seed fills (all of them reference only each other). */
export const SEEDED_TABLES = [
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

/**
 * Maintaining B-tree/GIN/HNSW indexes row by row costs far more than building them once after the
 * load (random UUID keys touch a new page per row). Drops the table's indexes and its primary key
 * if nothing references it, and returns the statements that recreate them with the same names and
 * definitions. On a partitioned table, dropping the parent index drops the partitions' indexes, and
 * a plain CREATE INDEX on the parent builds one on every partition, attached and valid.
 */
export interface DroppedIndex {
  readonly table: string;
  readonly name: string;
  readonly constraint: boolean;
  readonly create: string;
}

export async function dropIndexes(c: Client, table: string): Promise<DroppedIndex[]> {
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
export async function restoreIndexes(c: Client, dropped: readonly DroppedIndex[]): Promise<void> {
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
export async function pauseAutovacuum(c: Client): Promise<string[]> {
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
 * Every dropped index but the HNSW one (built during the load) and the statistics, on both lanes:
 * the behaviors' partition by partition, the other tables' table by table. Each group is one
 * transaction (so no connection holds a lock another one waits for). The behaviors' parent
 * indexes are left to the caller: created on the parent, they attach the partitions' ones.
 */
export async function buildIndexes(
  c: Client,
  lanes: Lanes,
  months: readonly { target: string }[],
  dropped: readonly DroppedIndex[],
  hnsw: DroppedIndex | undefined,
): Promise<void> {
  const behaviorIndexes = dropped.filter((d) => d.table === 'user_behaviors');
  const others = dropped.filter((d) => d.table !== 'user_behaviors' && d !== hnsw);
  const monthParts = new Set(months.map((m) => m.target));
  const leaves = await c.query<{ t: string }>(
    "SELECT inhrelid::regclass::text AS t FROM pg_inherits WHERE inhparent = 'user_behaviors'::regclass",
  );
  // (ANALYZE ONLY, 17+: the partitions are analyzed in their own groups.)
  const version = Number(
    (await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]?.v,
  );
  const analyze = (table: string) => ({ name: `analyze ${table}`, sql: `ANALYZE ${quoteIdent(table)}` });
  type Group = { name: string; sql: string }[] & { afterPartitions?: boolean; partition?: boolean };
  const partitionGroup = (g: { name: string; sql: string }[]): Group => Object.assign(g, { partition: true });
  const groups: Group[] = [
    ...months.map((m) =>
      partitionGroup([
        ...behaviorIndexes.map((d) => ({ name: `index ${d.name}`, sql: partitionIndex(d, m.target) })),
        analyze(m.target),
      ]),
    ),
    partitionGroup(leaves.rows.filter((r) => !monthParts.has(r.t)).map((r) => analyze(r.t))),
    // The parent's own statistics (a sample across the partitions): once every partition's
    // group is done (it would deadlock with their locks), alongside the small tables' groups.
    Object.assign([{ name: 'analyze', sql: `ANALYZE ${version >= 170000 ? 'ONLY ' : ''}user_behaviors` }], {
      afterPartitions: true,
    }),
    ...SEEDED_TABLES.filter((t) => t !== 'user_behaviors').map((table) => [
      ...others.filter((d) => d.table === table).map((d) => ({ name: `index ${d.name}`, sql: d.create })),
      analyze(table),
    ]),
  ];
  let partitionGroupsLeft = groups.filter((g) => g.partition).length;
  const takeGroups = async () => {
    for (let g = groups.shift(); g; g = groups.shift()) {
      if (g.afterPartitions) await lanes.waitFor(() => partitionGroupsLeft === 0);
      lanes.stopIfFailed();
      const group = g;
      await lanes.inTransaction(async (lc) => {
        for (const b of group) await lanes.timed(b.name, () => lc.query(b.sql));
      });
      if (g.partition) partitionGroupsLeft--;
    }
  };
  await firstFailure([takeGroups(), takeGroups()]);
}
