import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import type { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withPg } from '../../activities/postgres/connection';
import { migratorOptions } from '../../activities/postgres/migrate';
import { flywayChecksum } from '../../activities/postgres/migrations/checksum';
import { info, migrate, validate } from '../../activities/postgres/migrations/migrator';
import { SPEC_SCRIPTS, TAKEOVER_ROW } from '../../activities/postgres/migrations/spec-schema';
import { migrateAdoptingSpecSchema } from '../../activities/postgres/migrations/spec-takeover';
import { REPO_ROOT } from '../../src/config';
import { stackVars, testConfig, uniqueSuffix } from '../helpers/stack';
import { errorOf } from '../helpers/errors';

// The spec's V001/V002 exactly as the spec gives them (its two ```sql blocks).
const SPEC_DIR = path.join(REPO_ROOT, 'test/fixtures/spec-migrations');
// The real Flyway CLI (10.22.0), installed by `npm run stack -- up`.
const FLYWAY = stackVars().DBOPS_FLYWAY ?? '';
const suffix = uniqueSuffix();
const config = testConfig();
const created: string[] = [];
let runnableDir = '';
const admin = <T>(fn: (c: Client) => Promise<T>) => withPg(config.pg, 'postgres', fn);
const sql = <T>(database: string, fn: (c: Client) => Promise<T>) => withPg(config.pg, database, fn);
const opts = (database: string) => ({
  ...migratorOptions({ pg: config.pg, migrations: config.migrations }, database),
  lockWaitMs: 60_000,
});

async function newDatabase(tag: string): Promise<string> {
  const name = `t_spectk_${tag}_${suffix}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  created.push(name);
  return name;
}

/** Flyway with migrations/flyway.conf's settings, the scripts taken from `dir`. */
async function flyway(database: string, dir: string, command: string) {
  const r = await execa(
    FLYWAY,
    [
      `-configFiles=${path.join(config.migrations.dir, 'flyway.conf')}`,
      `-locations=filesystem:${dir}`,
      `-url=jdbc:postgresql://${config.pg.host}:${config.pg.port}/${database}`,
      `-user=${config.pg.user}`,
      command,
    ],
    {
      cwd: dir,
      env: config.pg.password ? { FLYWAY_PASSWORD: config.pg.password } : {},
      reject: false,
      timeout: 120_000,
    },
  );
  expect(r.exitCode, r.stdout + r.stderr).toBe(0);
  return r.stdout;
}

/**
 * A database as the spec's Flyway run left it. The dev PostgreSQL has no uuid-ossp, so Flyway runs
 * a copy of the spec's scripts without the `CREATE EXTENSION "uuid-ossp"` line, and the spec's
 * `DEFAULT uuid_generate_v4()` resolves to a stand-in SQL function of that name (uuid-ossp's
 * creates the same) in a schema of its own on the database's search_path: Flyway refuses a
 * non-empty public schema without history. `flyway repair` against the scripts as given then
 * records their checksums, as Flyway wrote them where uuid-ossp loads. Rows in the spec's
 * February 2024 partition stand for the data a team has.
 */
async function specBuiltDatabase(tag: string, withSpecChecksums = true): Promise<string> {
  const database = await newDatabase(tag);
  await sql(database, (c) =>
    c.query(`CREATE SCHEMA uuid_standin;
             CREATE FUNCTION uuid_standin.uuid_generate_v4() RETURNS uuid LANGUAGE sql AS 'SELECT gen_random_uuid()';
             ALTER DATABASE ${database} SET search_path TO public, uuid_standin;`),
  );
  await flyway(database, runnableDir, 'migrate');
  if (withSpecChecksums) await flyway(database, SPEC_DIR, 'repair');
  await sql(database, (c) =>
    c.query(`
      INSERT INTO users (name, email, password_hash) VALUES ('Ann', 'ann@example.com', 'x');
      INSERT INTO items (type, title) VALUES ('movie', 'Heat');
      INSERT INTO user_behaviors (user_id, item_id, action, created_at)
        SELECT u.id, i.id, 'view', '2024-02-15 12:00+00' FROM users u, items i;`),
  );
  return database;
}

async function historyRows(database: string) {
  return sql(database, async (c) => {
    const r = await c.query<{ version: string; description: string; type: string; checksum: number | null }>(
      'SELECT version, description, type, checksum FROM flyway_schema_history ORDER BY installed_rank',
    );
    return r.rows;
  });
}

beforeAll(async () => {
  if (!existsSync(FLYWAY)) throw new Error(`Flyway CLI not found at "${FLYWAY}": run npm run stack -- up`);
  runnableDir = mkdtempSync(path.join(os.tmpdir(), 'dbops-spec-'));
  for (const spec of SPEC_SCRIPTS) {
    const text = readFileSync(path.join(SPEC_DIR, spec.script), 'utf8');
    const runnable = text
      .split('\n')
      .filter((line) => !line.includes('"uuid-ossp"'))
      .join('\n');
    writeFileSync(path.join(runnableDir, spec.script), runnable);
  }
});

afterAll(async () => {
  for (const name of created) await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  if (runnableDir) rmSync(runnableDir, { recursive: true, force: true });
});

describe('the spec-schema definition', () => {
  it("holds the checksums of the spec's scripts as given and of dbops' released files", () => {
    for (const spec of SPEC_SCRIPTS) {
      expect(flywayChecksum(readFileSync(path.join(SPEC_DIR, spec.script))), spec.script).toBe(
        spec.specChecksum,
      );
      expect(flywayChecksum(readFileSync(path.join(config.migrations.dir, spec.script))), spec.script).toBe(
        spec.dbopsChecksum,
      );
    }
  });
});

/** Tables, columns, constraints, indexes, functions, triggers, partitions and extensions of public, as sorted lines. */
async function schemaOf(database: string): Promise<Record<string, string[]>> {
  const queries: Record<string, string> = {
    columns: `SELECT c.relname AS rel, concat_ws(' ', c.relname, c.relkind, a.attname, format_type(a.atttypid, a.atttypmod),
                     CASE WHEN a.attnotnull THEN 'NOT NULL' END, 'DEFAULT ' || pg_get_expr(d.adbin, d.adrelid)) AS line
                FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
               WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND a.attnum > 0
                 AND NOT a.attisdropped AND c.relname <> 'flyway_schema_history'`,
    constraints: `SELECT conrelid::regclass::text AS rel, concat_ws(' ', conrelid::regclass, conname, pg_get_constraintdef(oid)) AS line
                    FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND conrelid <> 0
                     AND conrelid <> 'flyway_schema_history'::regclass`,
    indexes: `SELECT x.indrelid::regclass::text AS rel, concat_ws(' ', pg_get_indexdef(x.indexrelid),
                     CASE WHEN NOT x.indisvalid THEN 'INVALID' END) AS line
                FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
               WHERE i.relnamespace = 'public'::regnamespace AND x.indrelid <> 'flyway_schema_history'::regclass`,
    functions: `SELECT p.proname::text AS rel, pg_get_functiondef(p.oid) AS line FROM pg_proc p
                 WHERE p.pronamespace = 'public'::regnamespace
                   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')`,
    triggers: `SELECT tgrelid::regclass::text AS rel, pg_get_triggerdef(oid) AS line FROM pg_trigger WHERE NOT tgisinternal`,
    partitions: `SELECT c.relname::text AS rel, concat_ws(' ', i.inhparent::regclass, c.relname, pg_get_expr(c.relpartbound, c.oid)) AS line
                   FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE c.relkind IN ('r', 'p')`,
    extensions: `SELECT extname::text AS rel, concat_ws(' ', extname, extversion) AS line FROM pg_extension`,
  };
  return sql(database, async (c) => {
    const out: Record<string, string[]> = {};
    for (const [kind, query] of Object.entries(queries)) {
      const r = await c.query<{ rel: string; line: string }>(query);
      out[kind] = r.rows.map((row) => `${row.rel}|${row.line}`).sort();
    }
    return out;
  });
}

const SPEC_PARTITIONS = ['user_behaviors_2024_01', 'user_behaviors_2024_02', 'user_behaviors_2024_03'];
const relOf = (line: string) => line.slice(0, line.indexOf('|'));

/** The lines about one partition, its name replaced, so partitions of different months compare. */
function partitionShape(schema: Record<string, string[]>, partition: string): string[] {
  return Object.entries(schema)
    .filter(([kind]) => kind !== 'partitions')
    .flatMap(([kind, lines]) =>
      lines.filter((l) => relOf(l) === partition).map((l) => `${kind}:${l.replaceAll(partition, '<p>')}`),
    )
    .sort();
}

describe('migrate --adopt-spec-schema on a database the spec built', () => {
  let spec: string;
  let fresh: string;
  beforeAll(async () => {
    [spec, fresh] = await Promise.all([specBuiltDatabase('spec'), newDatabase('fresh')]);
    await migrate(opts(fresh));
  });

  it("Flyway recorded the spec's checksums, which dbops' validate rejects", async () => {
    expect(await historyRows(spec)).toEqual(
      SPEC_SCRIPTS.map((s) => ({
        version: s.version,
        description: s.description,
        type: 'SQL',
        checksum: s.specChecksum,
      })),
    );
    const v = await validate(opts(spec));
    expect(v.valid).toBe(false);
    expect(v.errors.join('\n')).toMatch(/checksum mismatch for migration version 001/);
  });

  it('a dry run lists the takeover and the migrations after it, and changes nothing', async () => {
    const before = await schemaOf(spec);
    const r = await migrateAdoptingSpecSchema(opts(spec), true);
    expect(r.takeover.status).toBe('would-take-over');
    expect(r.takeover.statements).toEqual([
      'DROP INDEX IF EXISTS idx_users_email',
      'DROP FUNCTION IF EXISTS create_behavior_partition()',
      'CREATE TABLE user_behaviors_default PARTITION OF user_behaviors DEFAULT',
      'CREATE OR REPLACE FUNCTION ensure_behavior_partitions(from_month DATE, months_ahead INT)',
      'SELECT count(*) AS partitions_created',
    ]);
    expect(r.takeover.historyChanges).toEqual(
      SPEC_SCRIPTS.map((s) => `${s.version}: checksum ${s.specChecksum} -> ${s.dbopsChecksum}`),
    );
    expect(r.migrate.migrations.map((m) => m.version)).toEqual(['003', '004', '005', '006']);
    expect(await schemaOf(spec)).toEqual(before);
    expect((await historyRows(spec)).map((h) => h.checksum)).toEqual(SPEC_SCRIPTS.map((s) => s.specChecksum));
  });

  it('takes over, migrates V003–V006; dbops and Flyway validate; info shows the takeover row', async () => {
    const r = await migrateAdoptingSpecSchema(opts(spec));
    expect(r.takeover.status).toBe('taken-over');
    expect(r.migrate.migrations.map((m) => m.version)).toEqual(['003', '004', '005', '006']);
    expect(await validate(opts(spec))).toMatchObject({ valid: true, errors: [] });
    const i = await info(opts(spec));
    expect(i.migrations.map((m) => `${m.version}:${m.type}:${m.state}`)).toEqual([
      '001:SQL:Success',
      '002:SQL:Success',
      `${TAKEOVER_ROW.version}:BASELINE:Baseline`,
      '003:SQL:Success',
      '004:SQL:Success',
      '005:SQL:Success',
      '006:SQL:Success',
    ]);
    expect(i.migrations[2]!.description).toBe(TAKEOVER_ROW.description);
    expect(i.currentVersion).toBe('006');
    const out = await flyway(spec, config.migrations.dir, 'validate');
    expect(out).toMatch(/Successfully validated 7 migrations/);
  });

  it('a second run has nothing to take over and nothing to migrate', async () => {
    const before = await historyRows(spec);
    const r = await migrateAdoptingSpecSchema(opts(spec));
    expect(r.takeover.status).toBe('already-taken-over');
    expect(r.takeover.takenOverOn).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(r.migrate.migrations).toEqual([]);
    expect(await historyRows(spec)).toEqual(before);
    const dry = await migrateAdoptingSpecSchema(opts(spec), true);
    expect(dry.takeover.status).toBe('already-taken-over');
    expect(dry.migrate.migrations).toEqual([]);
  });

  it('the schema equals a fresh dbops database but for the uuid default and the spec’s own months', async () => {
    const taken = await schemaOf(spec);
    const want = await schemaOf(fresh);
    // the snapshot sees what it compares
    expect(want.functions!.map(relOf)).toEqual(['ensure_behavior_partitions', 'update_updated_at']);
    expect(want.partitions!.map(relOf)).toContain('user_behaviors_default');
    expect(want.indexes!.filter((l) => l.includes('idx_behaviors_item_created'))).toHaveLength(1);
    expect(Object.values(want).every((lines) => lines.length > 0)).toBe(true);
    // The spec's DEFAULT uuid_generate_v4() stays (the takeover changes no column default).
    const uuidDefaults = taken.columns!.filter((l) => l.includes('DEFAULT uuid_generate_v4()'));
    expect(uuidDefaults.map(relOf).sort()).toEqual(
      ['items', 'user_behaviors', 'users', ...SPEC_PARTITIONS, ...want.partitions!.map(relOf)].sort(),
    );
    const normalized = Object.fromEntries(
      Object.entries(taken).map(([kind, lines]) => [
        kind,
        lines
          .filter((l) => !SPEC_PARTITIONS.includes(relOf(l)))
          .map((l) => l.replace('DEFAULT uuid_generate_v4()', 'DEFAULT gen_random_uuid()')),
      ]),
    );
    expect(normalized).toEqual(want);
    // The spec's months stay, with the data in them, shaped like every other month.
    const model = partitionShape(
      want,
      want.partitions!.map(relOf).find((p) => /_\d{4}_\d\d$/.test(p))!,
    );
    for (const p of SPEC_PARTITIONS) {
      expect(
        partitionShape(taken, p).map((l) => l.replace('uuid_generate_v4()', 'gen_random_uuid()')),
      ).toEqual(model);
    }
  });

  it('data stays, a month without a partition lands in DEFAULT, item_id keeps its index', async () => {
    await sql(spec, async (c) => {
      const old = await c.query(`SELECT tableoid::regclass::text AS part FROM user_behaviors`);
      expect(old.rows).toEqual([{ part: 'user_behaviors_2024_02' }]);
      await c.query(`INSERT INTO user_behaviors (user_id, item_id, action, created_at)
                     SELECT u.id, i.id, 'like', '2031-07-01 00:00+00' FROM users u, items i`);
      const late = await c.query(
        `SELECT tableoid::regclass::text AS part FROM user_behaviors WHERE created_at >= '2031-01-01'`,
      );
      expect(late.rows).toEqual([{ part: 'user_behaviors_default' }]);
      const r = await c.query<{ indexdef: string }>(
        `SELECT pg_get_indexdef(x.indexrelid) AS indexdef FROM pg_index x
          WHERE x.indrelid = 'user_behaviors'::regclass AND x.indkey[0] =
                (SELECT attnum FROM pg_attribute WHERE attrelid = 'user_behaviors'::regclass AND attname = 'item_id')`,
      );
      expect(r.rows.map((row) => row.indexdef)).toEqual([
        'CREATE INDEX idx_behaviors_item_created ON ONLY public.user_behaviors USING btree (item_id, created_at DESC)',
      ]);
    });
  });
});

describe('migrate --adopt-spec-schema refuses other databases', () => {
  it('a database without history, one dbops built, one built from changed spec scripts; nothing changes', async () => {
    const [empty, dbopsBuilt, changed] = await Promise.all([
      newDatabase('empty'),
      newDatabase('dbops'),
      specBuiltDatabase('changed', false),
    ]);
    await migrate(opts(dbopsBuilt));
    const noHistory = await errorOf(migrateAdoptingSpecSchema(opts(empty)));
    expect(noHistory.type).toBe('Refused');
    expect(noHistory.message).toMatch(/no Flyway history.*`dbops migrate`/);
    const own = await errorOf(migrateAdoptingSpecSchema(opts(dbopsBuilt), true));
    expect(own.type).toBe('Refused');
    expect(own.message).toMatch(/dbops' own.*nothing to take over/);
    const before = await schemaOf(changed);
    const edited = await errorOf(migrateAdoptingSpecSchema(opts(changed)));
    expect(edited.type).toBe('Refused');
    const runnableChecksum = flywayChecksum(readFileSync(path.join(runnableDir, SPEC_SCRIPTS[0]!.script)));
    expect(edited.message).toContain(
      `V001 (V001__initial_schema.sql) has checksum ${runnableChecksum}, the spec's script as given has ${SPEC_SCRIPTS[0]!.specChecksum}`,
    );
    expect(edited.message).toContain(
      `UPDATE flyway_schema_history SET checksum = ${SPEC_SCRIPTS[0]!.specChecksum} WHERE installed_rank = 1`,
    );
    expect(edited.message).not.toMatch(/V002 \(V002__add_user_behaviors\.sql\) has/); // its V002 is the spec's
    expect(await schemaOf(changed)).toEqual(before);
    expect((await historyRows(changed)).map((h) => h.type)).toEqual(['SQL', 'SQL']);
  });

  it('a spec database whose partition trigger function is still in use', async () => {
    const database = await specBuiltDatabase('trigger');
    await sql(database, (c) =>
      c.query(`CREATE TRIGGER make_partition BEFORE INSERT ON user_profiles
                 FOR EACH ROW EXECUTE FUNCTION create_behavior_partition()`),
    );
    const err = await errorOf(migrateAdoptingSpecSchema(opts(database)));
    expect(err.type).toBe('Refused');
    expect(err.message).toContain('DROP TRIGGER make_partition ON user_profiles');
    expect(
      await sql(database, (c) => c.query(`SELECT to_regclass('user_behaviors_default') AS t`)),
    ).toMatchObject({
      rows: [{ t: null }],
    });
  });
});
