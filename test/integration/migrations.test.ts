import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withPg } from '../../activities/postgres/connection';
import { createMigrationActivities, migratorOptions } from '../../activities/postgres/migrate';
import {
  baseline,
  info,
  migrate,
  repair,
  validate,
  type MigrateSummary,
} from '../../activities/postgres/migrations/migrator';
import { testConfig, uniqueSuffix } from '../helpers/stack';
import { errorOf } from '../helpers/errors';

const suffix = uniqueSuffix();
const config = testConfig();
const created: string[] = [];
const tmpDirs: string[] = [];
const admin = <T>(fn: (c: Client) => Promise<T>) => withPg(config.pg, 'postgres', fn);

async function newDatabase(tag: string): Promise<string> {
  const name = `t_mig_${tag}_${suffix}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  created.push(name);
  return name;
}

/** A copy of migrations/ that a test may change. */
function copyMigrations(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbops-mig-'));
  tmpDirs.push(dir);
  cpSync(config.migrations.dir, dir, { recursive: true });
  return dir;
}

const opts = (database: string, dir = config.migrations.dir) => ({
  ...migratorOptions({ pg: config.pg, migrations: { ...config.migrations, dir } }, database),
  lockWaitMs: 60_000,
});

afterAll(async () => {
  for (const name of created) await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
});

describe('migrations from an empty database', () => {
  let database: string;
  beforeAll(async () => {
    database = await newDatabase('empty');
  });

  it('dry run lists all six and changes nothing', async () => {
    const s = await migrate(opts(database), true);
    expect(s.migrations.map((m) => m.version)).toEqual(['001', '002', '003', '004', '005', '006']);
    const tables = await withPg(config.pg, database, (c) =>
      c.query(`SELECT 1 FROM pg_tables WHERE schemaname = 'public'`),
    );
    expect(tables.rowCount).toBe(0);
  });

  it('applies all, info shows Success, a second run applies nothing, validate passes', async () => {
    const first = await migrate(opts(database));
    expect(first.migrations.map((m) => m.script)).toEqual([
      'V001__initial_schema.sql',
      'V002__add_user_behaviors.sql',
      'V003__add_recommendations.sql',
      'V004__add_indexes.sql',
      'V005__add_vector_extension.sql',
      'V006__drop_redundant_behavior_indexes.sql',
    ]);
    expect(first.finalVersion).toBe('006');
    const i = await info(opts(database));
    expect(i.migrations.map((m) => m.state)).toEqual(Array(6).fill('Success'));
    expect(i.currentVersion).toBe('006');
    const second = await migrate(opts(database));
    expect(second.migrations).toEqual([]);
    expect((await validate(opts(database))).errors).toEqual([]);
    const rows = await withPg(config.pg, database, (c) =>
      c.query(
        `SELECT installed_rank, version, description, type, script, installed_by = current_user AS by_me, success
           FROM flyway_schema_history ORDER BY installed_rank`,
      ),
    );
    expect(rows.rows[1]).toEqual({
      installed_rank: 2,
      version: '002',
      description: 'add user behaviors',
      type: 'SQL',
      script: 'V002__add_user_behaviors.sql',
      by_me: true,
      success: true,
    });
  });

  it('tampered file → validate and migrate fail naming the file; repair realigns', async () => {
    const dir = copyMigrations();
    const file = path.join(dir, 'V003__add_recommendations.sql');
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n-- edited after it was applied\n`);
    const v = await validate(opts(database, dir));
    expect(v.valid).toBe(false);
    expect(v.errors.join('\n')).toMatch(
      /checksum mismatch for migration version 003 .*V003__add_recommendations\.sql/,
    );
    const err = await errorOf(migrate(opts(database, dir)));
    expect(err.type).toBe('MigrationInvalid');
    expect(err.message).toContain('V003__add_recommendations.sql');
    const r = await repair(opts(database, dir));
    expect(r.realigned).toEqual(['V003__add_recommendations.sql']);
    expect((await validate(opts(database, dir))).valid).toBe(true);
    await repair(opts(database)); // back to the real file for the next tests
    expect((await validate(opts(database))).valid).toBe(true);
  });

  it('a new file older than the current version is an out-of-order error', async () => {
    const dir = copyMigrations();
    writeFileSync(path.join(dir, 'V002_5__late.sql'), 'SELECT 1;\n');
    const v = await validate(opts(database, dir));
    expect(v.errors.join('\n')).toMatch(
      /not applied to database: 002\.5 .*V002_5__late\.sql.*older than the current version 006/,
    );
    expect((await errorOf(migrate(opts(database, dir)))).type).toBe('MigrationInvalid');
  });

  it('a bad file name is an error naming the file', async () => {
    const dir = copyMigrations();
    writeFileSync(path.join(dir, 'V6_add_orders.sql'), 'SELECT 1;\n');
    const err = await errorOf(migrate(opts(database, dir)));
    expect(err.type).toBe('MigrationInvalid');
    expect(err.message).toContain('V6_add_orders.sql');
  });

  it('a removed applied file is reported missing', async () => {
    const dir = copyMigrations();
    rmSync(path.join(dir, 'V003__add_recommendations.sql'));
    const v = await validate(opts(database, dir));
    expect(v.errors.join('\n')).toMatch(/applied migration not resolved locally: 003/);
  });
});

describe('failures, reruns and repair', () => {
  it('a failed transactional migration rolls back and a rerun after the fix works', async () => {
    const database = await newDatabase('txfail');
    const dir = copyMigrations();
    const bad = path.join(dir, 'V007__add_orders.sql');
    writeFileSync(bad, 'CREATE TABLE orders (id int);\nSELECT * FROM no_such_table;\n');
    const err = await errorOf(migrate(opts(database, dir)));
    expect(err.type).toBe('MigrationFailed');
    expect(err.message).toMatch(/V007__add_orders\.sql.*no_such_table.*at line 2 of/);
    const i = await info(opts(database, dir));
    expect(i.currentVersion).toBe('006');
    expect(i.migrations.at(-1)!.state).toBe('Pending');
    writeFileSync(bad, 'CREATE TABLE orders (id int);\n');
    expect((await migrate(opts(database, dir))).migrations.map((m) => m.version)).toEqual(['007']);
  });

  it('a failed non-transactional migration is recorded failed; repair + fix + rerun works', async () => {
    const database = await newDatabase('ntxfail');
    const dir = copyMigrations();
    const bad = path.join(dir, 'V007__orders_index.sql');
    writeFileSync(
      bad,
      'CREATE TABLE orders (id int);\nCREATE INDEX CONCURRENTLY idx_orders_nope ON orders (nope);\n',
    );
    writeFileSync(`${bad}.conf`, 'executeInTransaction=false\n');
    const err = await errorOf(migrate(opts(database, dir)));
    expect(err.type).toBe('MigrationFailed');
    const failed = await info(opts(database, dir));
    expect(failed.migrations.at(-1)).toMatchObject({ version: '007', state: 'Failed' });
    const again = await errorOf(migrate(opts(database, dir)));
    expect(again.message).toMatch(/failed migration to version 007.*repair/);
    writeFileSync(
      bad,
      'CREATE TABLE IF NOT EXISTS orders (id int);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS idx_orders_id ON orders (id);\n',
    );
    expect((await repair(opts(database, dir))).removedFailed).toEqual(['V007__orders_index.sql']);
    expect((await migrate(opts(database, dir))).migrations.map((m) => m.version)).toEqual(['007']);
    expect((await validate(opts(database, dir))).valid).toBe(true);
  });
});

describe('concurrency, baseline and the activity', () => {
  it('two migrators at once: exactly one applies, the other waits and finds nothing to do', async () => {
    const database = await newDatabase('race');
    const waits: number[] = [];
    const [a, b] = await Promise.all([
      migrate({
        ...opts(database),
        onProgress: (p) => p.phase === 'waiting-for-lock' && waits.push(p.waitedMs),
      }),
      migrate({
        ...opts(database),
        onProgress: (p) => p.phase === 'waiting-for-lock' && waits.push(p.waitedMs),
      }),
    ]);
    expect([a.migrations.length, b.migrations.length].sort()).toEqual([0, 6]);
    expect(waits.length).toBeGreaterThan(0);
    const n = await withPg(config.pg, database, (c) =>
      c.query('SELECT count(*)::int AS n FROM flyway_schema_history'),
    );
    expect(n.rows[0].n).toBe(6);
  });

  it('baseline marks an existing database; only newer migrations run', async () => {
    const database = await newDatabase('base');
    await withPg(config.pg, database, (c) => c.query('CREATE TABLE legacy (id int)'));
    const err = await errorOf(migrate(opts(database)));
    expect(err.message).toMatch(/not empty .*dbops baseline/);
    // the legacy database already has the schema up to V001 (simulated by applying it by hand)
    await withPg(config.pg, database, (c) =>
      c.query(readFileSync(path.join(config.migrations.dir, 'V001__initial_schema.sql'), 'utf8')),
    );
    await baseline(opts(database), '1');
    const s = await migrate(opts(database));
    expect(s.migrations.map((m) => m.version)).toEqual(['002', '003', '004', '005', '006']);
    const i = await info(opts(database));
    expect(i.migrations.map((m) => `${m.version}:${m.type}:${m.state}`)).toEqual([
      '1:BASELINE:Baseline',
      '002:SQL:Success',
      '003:SQL:Success',
      '004:SQL:Success',
      '005:SQL:Success',
      '006:SQL:Success',
    ]);
    expect((await validate(opts(database))).valid).toBe(true);
  });

  it('migrateDatabase activity returns a JSON summary and heartbeats', async () => {
    const database = await newDatabase('act');
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const acts = createMigrationActivities({ pg: config.pg, migrations: config.migrations });
    const s: MigrateSummary = await env.run((input: { database: string }) => acts.migrateDatabase(input), {
      database,
    });
    expect(JSON.parse(JSON.stringify(s))).toMatchObject({ database, dryRun: false, finalVersion: '006' });
    expect(s.migrations).toHaveLength(6);
    expect(beats.filter((b) => (b as { phase: string }).phase === 'applied')).toHaveLength(6);
  });
});
