import type { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withPg } from '../../activities/postgres/connection';
import { migratorOptions } from '../../activities/postgres/migrate';
import { migrate } from '../../activities/postgres/migrations/migrator';
import { seedDatabase, type SeedResult } from '../../src/seed';
import { failureTypeOf } from '../../common/failures';
import { testConfig, uniqueSuffix } from '../helpers/stack';

const suffix = uniqueSuffix();
const config = testConfig();
const [dbA, dbB, dbEmpty] = ['a', 'b', 'bare'].map((t) => `t_seed_${t}_${suffix}`) as [
  string,
  string,
  string,
];
const admin = <T>(fn: (c: Client) => Promise<T>) => withPg(config.pg, 'postgres', fn);
const now = new Date();
const seedOpts = { scale: 0.002, seed: 7, months: 6, now };
let result: SeedResult;
let indexesBeforeSeed: string[];
let interrupted: unknown;
let afterFailure: { indexes: string[]; rows: number; reloptions: number };

/** Every index of the non-partition tables with its definition and validity. */
async function indexDefinitions(database: string): Promise<string[]> {
  return withPg(config.pg, database, async (c) => {
    const r = await c.query<{ d: string }>(
      `SELECT i.indexname || ' ' || i.indexdef || ' valid=' || x.indisvalid AS d
         FROM pg_indexes i JOIN pg_index x ON x.indexrelid = format('%I.%I', i.schemaname, i.indexname)::regclass
        WHERE i.schemaname = 'public' AND i.tablename !~ '^user_behaviors_' ORDER BY 1`,
    );
    return r.rows.map((row) => row.d);
  });
}

/** An order-independent digest of a table's content. */
async function digest(database: string, sql: string): Promise<string> {
  return withPg(config.pg, database, async (c) => {
    const r = await c.query<{ d: string }>(
      `SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) AS d FROM (${sql}) x`,
    );
    return r.rows[0]!.d;
  });
}

beforeAll(async () => {
  for (const db of [dbA, dbB, dbEmpty]) await admin((c) => c.query(`CREATE DATABASE ${db}`));
  for (const db of [dbA, dbB])
    await migrate(migratorOptions({ pg: config.pg, migrations: config.migrations }, db));
  indexesBeforeSeed = await indexDefinitions(dbA);
  result = await seedDatabase(config.pg, dbA, seedOpts);
  interrupted = await seedDatabase(config.pg, dbB, {
    ...seedOpts,
    onProgress: (p) => {
      if (p.table === 'user_behaviors') throw new Error('interrupted by the test');
    },
  }).catch((e: unknown) => e);
  afterFailure = {
    indexes: await indexDefinitions(dbB),
    rows: await withPg(config.pg, dbB, async (c) => {
      const r = await c.query<{ n: number }>(
        'SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM items) + (SELECT count(*) FROM user_behaviors) AS n',
      );
      return Number(r.rows[0]!.n);
    }),
    reloptions: await withPg(config.pg, dbB, async (c) => {
      const r = await c.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND reloptions IS NOT NULL",
      );
      return r.rows[0]!.n;
    }),
  };
  await seedDatabase(config.pg, dbB, seedOpts);
});

afterAll(async () => {
  for (const db of [dbA, dbB, dbEmpty])
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`));
});

describe('dbops db seed', () => {
  it('loads the expected row counts', async () => {
    expect(result.plan).toMatchObject({ users: 200, items: 100, behaviors: 10_000, recommendationLists: 40 });
    const counts = await withPg(config.pg, dbA, async (c) => {
      const r = await c.query<Record<string, number>>(
        `SELECT (SELECT count(*) FROM users)::int AS users, (SELECT count(*) FROM items)::int AS items,
                (SELECT count(*) FROM user_behaviors)::int AS behaviors, (SELECT count(*) FROM item_stats)::int AS stats,
                (SELECT count(*) FROM user_profiles)::int AS profiles, (SELECT count(*) FROM item_embeddings)::int AS item_emb,
                (SELECT count(*) FROM user_embeddings)::int AS user_emb, (SELECT count(*) FROM recommendation_lists)::int AS lists,
                (SELECT count(*) FROM recommendation_items)::int AS rec_items,
                (SELECT count(DISTINCT action) FROM user_behaviors)::int AS actions,
                (SELECT count(DISTINCT type) FROM items)::int AS types`,
      );
      return r.rows[0];
    });
    expect(counts).toEqual({
      users: 200,
      items: 100,
      behaviors: 10_000,
      stats: 100,
      profiles: 200,
      item_emb: 100,
      user_emb: 200,
      lists: 40,
      rec_items: 800,
      actions: 7,
      types: 4,
    });
    expect(result.rows.user_behaviors).toBe(10_000);
  });

  it('puts every behavior in a real monthly partition, none in DEFAULT', async () => {
    const r = await withPg(config.pg, dbA, (c) =>
      c.query<{ part: string; n: number }>(
        `SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM user_behaviors GROUP BY 1 ORDER BY 1`,
      ),
    );
    expect(r.rows.some((row) => row.part === 'user_behaviors_default')).toBe(false);
    expect(r.rows.length).toBeGreaterThanOrEqual(5);
    expect(r.rows.every((row) => /^user_behaviors_\d{4}_\d{2}$/.test(row.part))).toBe(true);
  });

  it('rebuilds every index it dropped for the load: same names, definitions, valid, on every partition', async () => {
    expect(indexesBeforeSeed.length).toBeGreaterThan(20);
    expect(await indexDefinitions(dbA)).toEqual(indexesBeforeSeed);
    const r = await withPg(config.pg, dbA, (c) =>
      c.query<{ idx: string; attached: number; parts: number }>(
        `SELECT x.indexrelid::regclass::text AS idx,
                (SELECT count(*) FROM pg_inherits WHERE inhparent = x.indexrelid)::int AS attached,
                (SELECT count(*) FROM pg_inherits WHERE inhparent = 'user_behaviors'::regclass)::int AS parts
           FROM pg_index x WHERE x.indrelid = 'user_behaviors'::regclass`,
      ),
    );
    // pkey, action, item_created, rec_list, user_action (V006 dropped the two redundant ones).
    expect(r.rows.length).toBe(5);
    for (const row of r.rows) expect(row.attached, row.idx).toBe(row.parts);
  });

  it('puts autovacuum back on every table it paused it on for the load', async () => {
    for (const db of [dbA, dbB]) {
      const r = await withPg(config.pg, db, (c) =>
        c.query<{ t: string }>(
          "SELECT oid::regclass::text AS t FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND reloptions IS NOT NULL",
        ),
      );
      expect(r.rows, db).toEqual([]);
    }
  });

  it('a load that fails midway leaves the database empty with all its indexes, ready to seed again', () => {
    expect(String(interrupted)).toMatch(/interrupted by the test/);
    expect(afterFailure).toEqual({ indexes: indexesBeforeSeed, rows: 0, reloptions: 0 });
  });

  it('item_stats and user_profiles agree with the behaviors', async () => {
    const mismatches = await withPg(config.pg, dbA, async (c) => {
      const s = await c.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM item_stats s
          WHERE s.view_count <> (SELECT count(*) FROM user_behaviors b WHERE b.item_id = s.item_id AND action = 'view')
             OR s.rating_count <> (SELECT count(*) FROM user_behaviors b WHERE b.item_id = s.item_id AND action = 'rating')
             OR s.avg_rating <> coalesce((SELECT round(avg(value), 2) FROM user_behaviors b WHERE b.item_id = s.item_id AND action = 'rating'), 0)`,
      );
      const p = await c.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM user_profiles p
          WHERE p.total_actions <> (SELECT count(*) FROM user_behaviors b WHERE b.user_id = p.user_id)
             OR p.last_active IS DISTINCT FROM (SELECT max(created_at) FROM user_behaviors b WHERE b.user_id = p.user_id)
             OR length(p.profile_vector) < 1024`,
      );
      return { stats: s.rows[0]!.n, profiles: p.rows[0]!.n };
    });
    expect(mismatches).toEqual({ stats: 0, profiles: 0 });
  });

  it('item_stats and user_profiles are exactly what SQL aggregates over the behaviors give', async () => {
    // The seed writes both from totals kept while generating; this is their definition in SQL.
    const differences = await withPg(config.pg, dbA, async (c) => {
      const stats = await c.query<{ n: number }>(
        `WITH ref AS (
           SELECT i.id AS item_id,
                  coalesce(b.views, 0) AS v, coalesce(b.clicks, 0) AS c, coalesce(b.likes, 0) AS l,
                  coalesce(b.shares, 0) AS s, coalesce(round(b.avg_rating, 2), 0) AS a, coalesce(b.ratings, 0) AS r
             FROM items i
             LEFT JOIN (
               SELECT item_id,
                      count(*) FILTER (WHERE action = 'view') AS views,
                      count(*) FILTER (WHERE action = 'click') AS clicks,
                      count(*) FILTER (WHERE action = 'like') AS likes,
                      count(*) FILTER (WHERE action = 'share') AS shares,
                      avg(value) FILTER (WHERE action = 'rating') AS avg_rating,
                      count(*) FILTER (WHERE action = 'rating') AS ratings
                 FROM user_behaviors GROUP BY item_id
             ) b ON b.item_id = i.id),
         got AS (SELECT item_id, view_count, click_count, like_count, share_count, avg_rating, rating_count FROM item_stats)
         SELECT ((SELECT count(*) FROM (SELECT * FROM ref EXCEPT SELECT * FROM got) x) +
                 (SELECT count(*) FROM (SELECT * FROM got EXCEPT SELECT * FROM ref) y))::int AS n`,
      );
      const profiles = await c.query<{ n: number }>(
        `WITH agg AS (
           SELECT b.user_id, i.type, i.category, extract(hour FROM b.created_at AT TIME ZONE 'UTC')::int AS hour,
                  count(*) AS n, max(b.created_at) AS last_at
             FROM user_behaviors b JOIN items i ON i.id = b.item_id
            GROUP BY 1, 2, 3, 4),
         ref AS (
           SELECT u.id, coalesce(t.total, 0) AS total, coalesce(t.types, '{}') AS types,
                  coalesce(c.categories, '{}') AS categories, coalesce(h.hours, '{}') AS hours,
                  t.last_at, vector_send(e.embedding) AS vector
             FROM users u
             LEFT JOIN user_embeddings e ON e.user_id = u.id
             LEFT JOIN (
               SELECT user_id, sum(n) AS total, max(last_at) AS last_at, jsonb_object_agg(type, n) AS types
                 FROM (SELECT user_id, type, sum(n) AS n, max(last_at) AS last_at FROM agg GROUP BY 1, 2) x
                GROUP BY user_id
             ) t ON t.user_id = u.id
             LEFT JOIN (
               SELECT user_id, jsonb_object_agg(category, n) AS categories
                 FROM (SELECT user_id, category, sum(n) AS n,
                              row_number() OVER (PARTITION BY user_id ORDER BY sum(n) DESC, category COLLATE "C") AS r
                         FROM agg GROUP BY 1, 2) x
                WHERE r <= 5 GROUP BY user_id
             ) c ON c.user_id = u.id
             LEFT JOIN (
               SELECT user_id, jsonb_object_agg(hour, n) AS hours
                 FROM (SELECT user_id, hour, sum(n) AS n FROM agg GROUP BY 1, 2) x
                GROUP BY user_id
             ) h ON h.user_id = u.id),
         got AS (SELECT user_id, total_actions, preferred_types, preferred_categories, active_hours, last_active,
                        profile_vector FROM user_profiles)
         SELECT ((SELECT count(*) FROM (SELECT * FROM ref EXCEPT SELECT * FROM got) x) +
                 (SELECT count(*) FROM (SELECT * FROM got EXCEPT SELECT * FROM ref) y))::int AS n`,
      );
      return { stats: stats.rows[0]!.n, profiles: profiles.rows[0]!.n };
    });
    expect(differences).toEqual({ stats: 0, profiles: 0 });
  });

  it('loads the behaviors and embeddings with COPY FREEZE: their pages are all-visible already', async () => {
    // (ANALYZE counts the visibility map's all-visible pages into relallvisible.)
    const r = await withPg(config.pg, dbA, (c) =>
      c.query<{ pages: number; visible: number }>(
        `SELECT sum(relpages)::int AS pages, sum(relallvisible)::int AS visible FROM pg_class
          WHERE relkind = 'r' AND (relname ~ '^user_behaviors_\\d{4}_\\d{2}$' OR relname IN ('item_embeddings', 'user_embeddings'))`,
      ),
    );
    expect(r.rows[0]!.pages).toBeGreaterThan(0);
    // Without FREEZE none would be before a VACUUM; with it, all but each COPY batch's last page
    // and the pages the few rows loaded later (past a month's end) went to.
    expect(r.rows[0]!.visible).toBeGreaterThanOrEqual(r.rows[0]!.pages * 0.6);
  });

  it('analyzes every table and partition once, and the parent across its partitions', async () => {
    const r = await withPg(config.pg, dbA, async (c) => {
      const counts = await c.query<{ t: string; n: number }>(
        `SELECT relname AS t, (analyze_count + autoanalyze_count)::int AS n FROM pg_stat_user_tables
          WHERE relname ~ '^user_behaviors_\\d{4}_\\d{2}$' AND n_live_tup > 0 OR relname IN ('users', 'items', 'user_profiles')
          ORDER BY 1`,
      );
      const parent = await c.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stats WHERE tablename = 'user_behaviors' AND inherited",
      );
      return { counts: counts.rows, parentColumns: parent.rows[0]!.n };
    });
    expect(r.counts.length).toBeGreaterThanOrEqual(8);
    for (const row of r.counts) expect(row.n, row.t).toBe(1);
    expect(r.parentColumns).toBeGreaterThanOrEqual(9);
  });

  it('embeddings are unit vectors and nearest neighbours share a category', async () => {
    const r = await withPg(config.pg, dbA, (c) =>
      c.query<{ max_dev: number; same: string }>(
        `SELECT (SELECT max(abs(vector_norm(embedding) - 1)) FROM item_embeddings) AS max_dev,
                (SELECT avg((i.category = n.category)::int)::text FROM items i
                   CROSS JOIN LATERAL (SELECT i2.category FROM item_embeddings e2 JOIN items i2 ON i2.id = e2.item_id
                                        WHERE e2.item_id <> i.id
                                        ORDER BY e2.embedding <=> (SELECT embedding FROM item_embeddings WHERE item_id = i.id) LIMIT 1) n) AS same`,
      ),
    );
    expect(r.rows[0]!.max_dev).toBeLessThan(1e-3);
    expect(Number(r.rows[0]!.same)).toBeGreaterThan(0.9);
  });

  it('the same seed gives the same data', async () => {
    for (const sql of [
      'SELECT id, email, age, status, created_at FROM users',
      'SELECT id, user_id, item_id, action, value, session_id, created_at FROM user_behaviors',
      'SELECT item_id, view_count, click_count, like_count, share_count, avg_rating, rating_count FROM item_stats',
      'SELECT user_id, total_actions, preferred_types, preferred_categories, active_hours, last_active FROM user_profiles',
      'SELECT item_id, embedding FROM item_embeddings',
      'SELECT list_id, rank, item_id, score FROM recommendation_items',
    ]) {
      expect(await digest(dbA, sql), sql).toBe(await digest(dbB, sql));
    }
  });

  it('refuses an unmigrated database and a non-empty one, and bad options', async () => {
    const bare = await seedDatabase(config.pg, dbEmpty, seedOpts).catch((e: unknown) => e);
    expect(failureTypeOf(bare)).toBe('Misconfigured');
    expect(String(bare)).toMatch(/dbops migrate --database t_seed_bare_/);
    const again = await seedDatabase(config.pg, dbA, seedOpts).catch((e: unknown) => e);
    expect(failureTypeOf(again)).toBe('Refused');
    const bad = await seedDatabase(config.pg, dbA, { ...seedOpts, scale: -1 }).catch((e: unknown) => e);
    expect(failureTypeOf(bad)).toBe('InvalidInput');
  });
});
