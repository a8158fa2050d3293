import { Client } from 'pg';
import type { Client as TemporalClient } from '@temporalio/client';
import { pgClientConfig, quoteIdent } from '../../activities/postgres/connection';
import type { BackupWorkflowResult } from '../../common/backup';
import type { Config } from '../../src/config';
import type { backupWorkflow } from '../../workflows/backup';

/** Creates `database` with tables (one partitioned, one bytea, one empty), an extension and a Flyway history. */
export async function populate(config: Config, database: string, rows = 20_000): Promise<void> {
  await sql(config, undefined, `DROP DATABASE IF EXISTS ${quoteIdent(database)} WITH (FORCE)`);
  await sql(config, undefined, `CREATE DATABASE ${quoteIdent(database)}`);
  await sql(
    config,
    database,
    `
    CREATE EXTENSION pg_trgm;
    CREATE TABLE users (id bigint PRIMARY KEY, email text UNIQUE NOT NULL, note text);
    CREATE INDEX users_email_trgm ON users USING gin (email gin_trgm_ops);
    CREATE TABLE events (id bigint, user_id bigint NOT NULL, at timestamptz NOT NULL, kind text) PARTITION BY RANGE (at);
    CREATE TABLE events_2026_01 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
    CREATE TABLE events_2026_02 PARTITION OF events FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
    CREATE TABLE events_default PARTITION OF events DEFAULT;
    CREATE INDEX events_user ON events (user_id);
    CREATE TABLE blobs (id int PRIMARY KEY, data bytea);
    CREATE TABLE empty_table (id int);
    CREATE TABLE flyway_schema_history (installed_rank int PRIMARY KEY, version varchar(50), description varchar(200) NOT NULL,
      type varchar(20) NOT NULL, script varchar(1000) NOT NULL, checksum int, installed_by varchar(100) NOT NULL,
      installed_on timestamp NOT NULL DEFAULT now(), execution_time int NOT NULL, success boolean NOT NULL);
    INSERT INTO flyway_schema_history VALUES (1, '001', 'init', 'SQL', 'V001__init.sql', 1, 'postgres', now(), 1, true),
      (2, '002', 'more', 'SQL', 'V002__more.sql', 2, 'postgres', now(), 1, true);
    INSERT INTO users SELECT g, 'u' || g || '@example.com', CASE WHEN g % 7 = 0 THEN 'quote '' and "double"' END FROM generate_series(1, ${rows}) g;
    INSERT INTO events SELECT g, 1 + g % ${rows}, timestamptz '2026-01-01' + (g % 90) * interval '1 day', 'k' || (g % 5) FROM generate_series(1, ${rows * 2}) g;
    INSERT INTO blobs SELECT g, decode(repeat(md5(g::text), 8), 'hex') FROM generate_series(1, ${Math.ceil(rows / 10)}) g;
    ANALYZE;
  `,
  );
}

export async function sql<T = Record<string, unknown>>(
  config: Config,
  database: string | undefined,
  text: string,
  params: unknown[] = [],
): Promise<T[]> {
  const c = new Client(pgClientConfig(config.pg, database));
  await c.connect();
  try {
    const r = await c.query(text, params);
    const last = Array.isArray(r) ? r[r.length - 1] : r;
    return (last?.rows ?? []) as T[];
  } finally {
    await c.end();
  }
}

/** Row counts and an order-independent checksum of the data tables. */
export async function fingerprint(config: Config, database: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of ['users', 'events', 'blobs', 'empty_table']) {
    const [r] = await sql<{ n: string; h: string | null }>(
      config,
      database,
      `SELECT count(*)::text AS n, md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))) AS h FROM ${t} x`,
    );
    out[t] = `${r!.n}:${r!.h ?? ''}`;
  }
  return out;
}

export async function databasesLike(config: Config, prefix: string): Promise<string[]> {
  const rows = await sql<{ datname: string }>(
    config,
    undefined,
    'SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1',
    [prefix],
  );
  return rows.map((r) => r.datname);
}

export async function dropDatabasesLike(config: Config, prefix: string): Promise<void> {
  for (const d of await databasesLike(config, prefix)) {
    await sql(config, undefined, `DROP DATABASE IF EXISTS ${quoteIdent(d)} WITH (FORCE)`);
  }
}

/** A real backup through the backup workflow (on the config's task queue; a worker must be running). */
export async function takeBackup(
  client: TemporalClient,
  config: Config,
  database: string,
  verify = false,
): Promise<BackupWorkflowResult> {
  return client.workflow.execute<typeof backupWorkflow>('backupWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId: `test-backup-${database}-${Date.now()}`,
    args: [{ database, trigger: 'manual', prune: false, verify }],
  });
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
