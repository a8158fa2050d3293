import { execFileSync } from 'node:child_process';
import { Client } from 'pg';
import { pgClientConfig } from '../../activities/postgres/connection';
import type { Config } from '../../src/config';

/** Creates `database` with a few tables (one partitioned, one bytea) and ~`rows` rows, plus a Flyway history row. */
export async function createPopulatedDatabase(
  config: Config,
  database: string,
  rows = 50_000,
): Promise<void> {
  const admin = new Client(pgClientConfig(config.pg));
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${database}"`);
  } finally {
    await admin.end();
  }
  const c = new Client(pgClientConfig(config.pg, database));
  await c.connect();
  try {
    await c.query(`
      CREATE TABLE users (id bigint PRIMARY KEY, email text UNIQUE NOT NULL, note text);
      CREATE TABLE events (id bigint, user_id bigint NOT NULL, at timestamptz NOT NULL, kind text) PARTITION BY RANGE (at);
      CREATE TABLE events_2026_01 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
      CREATE TABLE events_2026_02 PARTITION OF events FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
      CREATE TABLE events_default PARTITION OF events DEFAULT;
      CREATE TABLE blobs (id int PRIMARY KEY, data bytea);
      CREATE TABLE empty_table (id int);
      CREATE TABLE flyway_schema_history (installed_rank int PRIMARY KEY, version varchar(50), description varchar(200) NOT NULL,
        type varchar(20) NOT NULL, script varchar(1000) NOT NULL, checksum int, installed_by varchar(100) NOT NULL,
        installed_on timestamp NOT NULL DEFAULT now(), execution_time int NOT NULL, success boolean NOT NULL);
      INSERT INTO flyway_schema_history VALUES (1, '001', 'init', 'SQL', 'V001__init.sql', 1, 'postgres', now(), 1, true),
        (2, '002', 'more', 'SQL', 'V002__more.sql', 2, 'postgres', now(), 1, true);
      INSERT INTO users SELECT g, 'u' || g || '@example.com', CASE WHEN g % 7 = 0 THEN 'quote '' and "double" and tab	x' END FROM generate_series(1, ${rows}) g;
      INSERT INTO events SELECT g, 1 + g % ${rows}, timestamptz '2026-01-01' + (g % 90) * interval '1 day', 'k' || (g % 5) FROM generate_series(1, ${rows * 2}) g;
      INSERT INTO blobs SELECT g, decode(repeat(md5(g::text), 32), 'hex') FROM generate_series(1, ${Math.ceil(rows / 10)}) g;
    `);
  } finally {
    await c.end();
  }
}

export async function dropDatabase(config: Config, database: string): Promise<void> {
  const admin = new Client(pgClientConfig(config.pg));
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

export async function rowCounts(
  config: Config,
  database: string,
  tables: { schema: string; table: string }[],
) {
  const c = new Client(pgClientConfig(config.pg, database));
  await c.connect();
  try {
    const out: Record<string, number> = {};
    for (const t of tables) {
      const r = await c.query<{ n: string }>(`SELECT count(*) AS n FROM "${t.schema}"."${t.table}"`);
      out[`${t.schema}.${t.table}`] = Number(r.rows[0]!.n);
    }
    return out;
  } finally {
    await c.end();
  }
}

/** Runs a stock client tool of the stack's PostgreSQL with libpq env. */
export function pgTool(config: Config, tool: string, args: string[], input?: Buffer): Buffer {
  return execFileSync(`${config.pg.binDir}/${tool}`, args, {
    input,
    maxBuffer: 1 << 30,
    env: {
      PATH: process.env.PATH,
      PGHOST: config.pg.host,
      PGPORT: String(config.pg.port),
      PGUSER: config.pg.user,
    },
  });
}
