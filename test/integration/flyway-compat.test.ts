import { existsSync } from 'node:fs';
import { execa } from 'execa';
import type { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withPg } from '../../activities/postgres/connection';
import { migratorOptions } from '../../activities/postgres/migrate';
import { info, migrate, validate } from '../../activities/postgres/migrations/migrator';
import { stackVars, testConfig, uniqueSuffix } from '../helpers/stack';

// The real Flyway CLI (10.22.0 from Maven Central), installed by `npm run stack -- up`.
const FLYWAY = stackVars().DBOPS_FLYWAY ?? '';
const suffix = uniqueSuffix();
const config = testConfig();
const byDbops = `t_mig_fwdbops_${suffix}`;
const byFlyway = `t_mig_fwflyway_${suffix}`;
const admin = <T>(fn: (c: Client) => Promise<T>) => withPg(config.pg, 'postgres', fn);
const opts = (database: string) =>
  migratorOptions({ pg: config.pg, migrations: config.migrations }, database);

/** Runs Flyway with migrations/flyway.conf from the migrations folder; the password goes via env. */
function flyway(database: string, command: string) {
  return execa(
    FLYWAY,
    [
      '-configFiles=flyway.conf',
      `-url=jdbc:postgresql://${config.pg.host}:${config.pg.port}/${database}`,
      `-user=${config.pg.user}`,
      command,
    ],
    {
      cwd: config.migrations.dir,
      env: config.pg.password ? { FLYWAY_PASSWORD: config.pg.password } : {},
      reject: false,
      timeout: 120_000,
    },
  );
}

async function history(database: string) {
  return withPg(config.pg, database, async (c) => {
    const r = await c.query<Record<string, unknown>>(
      `SELECT installed_rank, version, description, type, script, checksum, installed_by, success
         FROM flyway_schema_history ORDER BY installed_rank`,
    );
    return r.rows;
  });
}

beforeAll(async () => {
  if (!existsSync(FLYWAY)) throw new Error(`Flyway CLI not found at "${FLYWAY}": run npm run stack -- up`);
  for (const db of [byDbops, byFlyway]) await admin((c) => c.query(`CREATE DATABASE ${db}`));
});

afterAll(async () => {
  for (const db of [byDbops, byFlyway])
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`));
});

describe('compatibility with the Flyway 10.22.0 CLI', () => {
  it('Flyway validates a database migrated by dbops', async () => {
    await migrate(opts(byDbops));
    const r = await flyway(byDbops, 'validate');
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Successfully validated 6 migrations/);
  });

  it('dbops validates a database migrated by Flyway, and finds nothing to migrate', async () => {
    const r = await flyway(byFlyway, 'migrate');
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(await validate(opts(byFlyway))).toMatchObject({ valid: true, errors: [] });
    expect((await migrate(opts(byFlyway))).migrations).toEqual([]);
    const i = await info(opts(byFlyway));
    expect(i.migrations.map((m) => m.state)).toEqual(Array(6).fill('Success'));
  });

  it('both histories have the same rows and checksums', async () => {
    const a = await history(byDbops);
    const b = await history(byFlyway);
    expect(a).toHaveLength(6);
    expect(a).toEqual(b);
    expect(a.every((row) => Number.isInteger(row.checksum))).toBe(true);
  });
});
