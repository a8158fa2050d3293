import { readdirSync } from 'node:fs';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Client } from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createPostgresActivities } from '../../activities/postgres';
import { withPg } from '../../activities/postgres/connection';
import { initDatabase, type InitResult } from '../../activities/postgres/init';
import { migrateFn } from '../../activities/postgres/migrate';
import { failureTypeOf } from '../../common/failures';
import { testConfig, uniqueSuffix } from '../helpers/stack';

const suffix = uniqueSuffix();
const database = `t_init_${suffix}`;
const role = `t_init_role_${suffix}`;
const config = testConfig({ DBOPS_TASK_QUEUE: `test-lifecycle-${suffix}` });
const admin = <T>(fn: (c: Client) => Promise<T>) => withPg(config.pg, 'postgres', fn);
const migrationCount = readdirSync(config.migrations.dir).filter((f) => /^V\d+__.*\.sql$/.test(f)).length;
const resultOf = (r: InitResult, step: string) => r.steps.find((s) => s.step === step)?.result ?? '';

afterAll(async () => {
  await admin(async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await c.query(`DROP ROLE IF EXISTS ${role}`);
  });
});

describe('dbops db init', () => {
  it('creates role, database, extensions and schema on an empty server', async () => {
    const before = await admin((c) => c.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]));
    expect(before.rowCount).toBe(0);

    const result = await initDatabase(
      config.pg,
      { database, role },
      migrateFn({ pg: config.pg, migrations: config.migrations }),
    );
    expect(resultOf(result, `role ${role}`)).toMatch(/^created \(NOLOGIN/);
    expect(resultOf(result, `database ${database}`)).toBe(`created (owner ${role})`);
    expect(resultOf(result, 'extension vector')).toMatch(/^created/);
    expect(resultOf(result, 'extension pg_trgm')).toMatch(/^created/);
    expect(resultOf(result, 'migrations')).toMatch(new RegExp(`^applied ${migrationCount}\\b`));

    const catalog = await admin((c) =>
      c.query<{ owner: string; canlogin: boolean }>(
        `SELECT pg_get_userbyid(d.datdba) AS owner, r.rolcanlogin AS canlogin
           FROM pg_database d, pg_roles r WHERE d.datname = $1 AND r.rolname = $2`,
        [database, role],
      ),
    );
    expect(catalog.rows[0]).toEqual({ owner: role, canlogin: false });
    await withPg(config.pg, database, async (c) => {
      const ext = await c.query<{ e: string }>(
        `SELECT string_agg(extname, ',' ORDER BY extname) AS e FROM pg_extension WHERE extname IN ('vector', 'pg_trgm')`,
      );
      expect(ext.rows[0]!.e).toBe('pg_trgm,vector');
      const t = await c.query<{ p: string | null; ok: boolean }>(
        `SELECT to_regclass('user_behaviors_default')::text AS p, has_table_privilege($1, 'users', 'INSERT') AS ok`,
        [role],
      );
      expect(t.rows[0]).toEqual({ p: 'user_behaviors_default', ok: true });
    });
  }, 60_000);

  it('on an existing database only migrates (through the activity)', async () => {
    const activities = createPostgresActivities({ pg: config.pg, migrations: config.migrations });
    const env = new MockActivityEnvironment();
    const heartbeats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => heartbeats.push(d));
    const result: InitResult = await env.run(
      (input: { database: string; role: string }) => activities.initDatabase(input),
      {
        database,
        role,
      },
    );
    expect(resultOf(result, `role ${role}`)).toBe('exists');
    expect(resultOf(result, `database ${database}`)).toBe(`exists (owner ${role})`);
    expect(resultOf(result, 'extension vector')).toMatch(/^exists/);
    expect(resultOf(result, 'migrations')).toMatch(/^applied 0\b/);
    expect(heartbeats.length).toBeGreaterThan(0);
  }, 60_000);

  it('refuses a hostile name before touching the server', async () => {
    const bad = `t_init_${suffix}"; DROP DATABASE postgres; --`;
    const err = await initDatabase(config.pg, { database: bad, role }, () => {
      throw new Error('must not migrate');
    }).catch((e: unknown) => e);
    expect(failureTypeOf(err)).toBe('InvalidInput');
    expect((err as Error).message).toMatch(/not valid.*--database/);
  });
});
