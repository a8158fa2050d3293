import type { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withPg } from '../../activities/postgres/connection';
import { migratorOptions } from '../../activities/postgres/migrate';
import { migrate } from '../../activities/postgres/migrations/migrator';
import { testConfig, uniqueSuffix } from '../helpers/stack';

const config = testConfig();
const database = `t_mig_schema_${uniqueSuffix()}`;
const admin = <T>(fn: (c: Client) => Promise<T>) => withPg(config.pg, 'postgres', fn);
const db = <T>(fn: (c: Client) => Promise<T>) => withPg(config.pg, database, fn);

/** First day (UTC) of the month `offset` months from now, at 12:00. */
function monthFromNow(offset: number): Date {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 15, 12));
}

async function rejects(c: Client, sql: string, params: unknown[] = []): Promise<string> {
  await c.query('SAVEPOINT s');
  try {
    await c.query(sql, params);
  } catch (err) {
    await c.query('ROLLBACK TO SAVEPOINT s');
    return (err as { code: string }).code;
  }
  throw new Error(`expected rejection: ${sql}`);
}

let userId: string;
let itemId: string;

beforeAll(async () => {
  await admin((c) => c.query(`CREATE DATABASE ${database}`));
  await migrate(migratorOptions({ pg: config.pg, migrations: config.migrations }, database));
  await db(async (c) => {
    userId = (
      await c.query(
        `INSERT INTO users (name, email, password_hash, age) VALUES ('Ann', 'ann@example.com', 'x', 30) RETURNING id`,
      )
    ).rows[0].id;
    itemId = (
      await c.query(
        `INSERT INTO items (type, title, category) VALUES ('movie', 'Heat', 'crime') RETURNING id`,
      )
    ).rows[0].id;
  });
});

afterAll(async () => {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
});

describe('schema behaviour', () => {
  it('behaviors from 11 months ago to 2 months ahead land in monthly partitions; far future in DEFAULT', async () => {
    await db(async (c) => {
      const cases: [Date, string][] = [];
      for (const offset of [0, -11, 2]) {
        const d = monthFromNow(offset);
        cases.push([
          d,
          `user_behaviors_${d.getUTCFullYear()}_${String(d.getUTCMonth() + 1).padStart(2, '0')}`,
        ]);
      }
      cases.push([monthFromNow(60), 'user_behaviors_default']);
      for (const [at, partition] of cases) {
        const r = await c.query(
          `INSERT INTO user_behaviors (user_id, item_id, action, created_at) VALUES ($1, $2, 'view', $3)
           RETURNING tableoid::regclass::text AS part`,
          [userId, itemId, at],
        );
        expect(r.rows[0].part).toBe(partition);
      }
    });
  });

  it('ensure_behavior_partitions is idempotent and drains matching DEFAULT rows into the new partition', async () => {
    await db(async (c) => {
      const far = monthFromNow(60);
      const from = `${far.getUTCFullYear()}-${String(far.getUTCMonth() + 1).padStart(2, '0')}-01`;
      const made = await c.query('SELECT * FROM ensure_behavior_partitions($1::date, 0) AS p', [from]);
      expect(made.rows).toHaveLength(1);
      expect(
        (await c.query('SELECT * FROM ensure_behavior_partitions($1::date, 0)', [from])).rows,
      ).toHaveLength(0);
      const where = await c.query(
        `SELECT tableoid::regclass::text AS part FROM user_behaviors WHERE created_at = $1`,
        [far],
      );
      expect(where.rows[0].part).toBe(made.rows[0].p);
      const inDefault = await c.query('SELECT count(*)::int AS n FROM user_behaviors_default');
      expect(inDefault.rows[0].n).toBe(0);
    });
  });

  it('V004 partitioned indexes are valid and present on every partition', async () => {
    await db(async (c) => {
      const r = await c.query<{ idx: string; valid: boolean; parts: number; attached: number }>(
        `SELECT x.indexrelid::regclass::text AS idx, x.indisvalid AS valid,
                (SELECT count(*) FROM pg_inherits WHERE inhparent = 'user_behaviors'::regclass)::int AS parts,
                (SELECT count(*) FROM pg_inherits WHERE inhparent = x.indexrelid)::int AS attached
           FROM pg_index x WHERE x.indrelid = 'user_behaviors'::regclass
            AND x.indexrelid::regclass::text IN ('idx_behaviors_item_created', 'idx_behaviors_rec_list')`,
      );
      expect(r.rows).toHaveLength(2);
      for (const row of r.rows) expect(row).toMatchObject({ valid: true, attached: row.parts });
    });
  });

  it('no index is redundant: none is the left prefix of another on the same table (V006)', async () => {
    await db(async (c) => {
      const r = await c.query<{ redundant: string; covered_by: string }>(
        `SELECT a.indexrelid::regclass::text AS redundant, b.indexrelid::regclass::text AS covered_by
           FROM pg_index a
           JOIN pg_index b ON a.indrelid = b.indrelid AND a.indexrelid <> b.indexrelid
           JOIN pg_class t ON t.oid = a.indrelid
           JOIN pg_class ai ON ai.oid = a.indexrelid
           JOIN pg_class bi ON bi.oid = b.indexrelid
          WHERE t.relnamespace = 'public'::regnamespace AND ai.relam = bi.relam
            AND NOT a.indisunique AND a.indpred IS NULL AND b.indpred IS NULL
            AND a.indexprs IS NULL AND b.indexprs IS NULL AND a.indnkeyatts <= b.indnkeyatts
            AND (b.indkey::int2[])[0:a.indnkeyatts - 1] = (a.indkey::int2[])[0:a.indnkeyatts - 1]
            AND (b.indoption::int2[])[0:a.indnkeyatts - 1] = (a.indoption::int2[])[0:a.indnkeyatts - 1]
            AND (b.indclass::oid[])[0:a.indnkeyatts - 1] = (a.indclass::oid[])[0:a.indnkeyatts - 1]`,
      );
      expect(r.rows).toEqual([]);
      // The foreign keys' referencing columns still lead an index (ON DELETE CASCADE lookups).
      const lead = await c.query<{ col: string }>(
        `SELECT a.attname AS col FROM pg_index x
           JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]
          WHERE x.indrelid = 'user_behaviors'::regclass`,
      );
      expect(lead.rows.map((x) => x.col)).toEqual(expect.arrayContaining(['user_id', 'item_id']));
    });
  });

  it('CHECK constraints reject bad rows', async () => {
    await db(async (c) => {
      await c.query('BEGIN');
      expect(
        await rejects(c, `INSERT INTO users (name, email, password_hash, age) VALUES ('b', 'b@x', 'x', 200)`),
      ).toBe('23514');
      expect(
        await rejects(
          c,
          `INSERT INTO users (name, email, password_hash, status) VALUES ('b', 'b@x', 'x', 'zombie')`,
        ),
      ).toBe('23514');
      expect(await rejects(c, `INSERT INTO items (type, title) VALUES ('podcast', 't')`)).toBe('23514');
      expect(
        await rejects(c, `INSERT INTO user_behaviors (user_id, item_id, action) VALUES ($1, $2, 'stare')`, [
          userId,
          itemId,
        ]),
      ).toBe('23514');
      expect(
        await rejects(
          c,
          `INSERT INTO users (name, email, password_hash) VALUES ('c', 'ann@example.com', 'x')`,
        ),
      ).toBe('23505');
      await c.query('ROLLBACK');
    });
  });

  it('updated_at triggers fire', async () => {
    await db(async (c) => {
      await c.query(`UPDATE users SET updated_at = now() - interval '1 day' WHERE id = $1`, [userId]);
      await c.query('INSERT INTO item_stats (item_id) VALUES ($1) ON CONFLICT DO NOTHING', [itemId]);
      await c.query(`UPDATE item_stats SET updated_at = '2000-01-01' WHERE item_id = $1`, [itemId]);
      const r = await c.query(
        `SELECT (SELECT updated_at > now() - interval '1 minute' FROM users WHERE id = $1) AS users_ok,
                (SELECT updated_at > '2000-01-02' FROM item_stats WHERE item_id = $2) AS stats_ok`,
        [userId, itemId],
      );
      expect(r.rows[0]).toEqual({ users_ok: true, stats_ok: true });
    });
  });

  it('the HNSW index serves a cosine nearest-neighbour query', async () => {
    await db(async (c) => {
      await c.query(
        `INSERT INTO items (type, title) SELECT 'video', 'v' || g FROM generate_series(1, 300) g;
         INSERT INTO item_embeddings (item_id, embedding, model_version)
         SELECT id, (SELECT array_agg(random())::vector(256) FROM generate_series(1, 256) WHERE id IS NOT NULL), 'test-v1' FROM items;
         ANALYZE item_embeddings;`,
      );
      await c.query('SET enable_seqscan = off');
      const plan = await c.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN SELECT item_id FROM item_embeddings ORDER BY embedding <=> (SELECT embedding FROM item_embeddings LIMIT 1) LIMIT 10`,
      );
      expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toContain('idx_item_embeddings_hnsw');
    });
  });

  it('deleting a user cascades to behaviors, profiles, embeddings and recommendations', async () => {
    await db(async (c) => {
      await c.query(`INSERT INTO user_profiles (user_id, total_actions) VALUES ($1, 3)`, [userId]);
      await c.query(
        `INSERT INTO user_embeddings (user_id, embedding, model_version) VALUES ($1, array_fill(0.1, ARRAY[256])::vector, 'v1')`,
        [userId],
      );
      const list = await c.query(
        `INSERT INTO recommendation_lists (user_id, model_name, model_version, strategy) VALUES ($1, 'gr', '1', 'generative') RETURNING id`,
        [userId],
      );
      await c.query(
        `INSERT INTO recommendation_items (list_id, rank, item_id, score) VALUES ($1, 1, $2, 0.9)`,
        [list.rows[0].id, itemId],
      );
      await c.query('DELETE FROM users WHERE id = $1', [userId]);
      const left = await c.query(
        `SELECT (SELECT count(*) FROM user_behaviors WHERE user_id = $1)::int AS b,
                (SELECT count(*) FROM user_profiles WHERE user_id = $1)::int AS p,
                (SELECT count(*) FROM user_embeddings WHERE user_id = $1)::int AS e,
                (SELECT count(*) FROM recommendation_items)::int AS r`,
        [userId],
      );
      expect(left.rows[0]).toEqual({ b: 0, p: 0, e: 0, r: 0 });
    });
  });
});
