import { Client, type Client as PgClient } from 'pg';
import type { TableRowCount } from '../../../common/backup';
import { FailureType, failure } from '../../../common/failures';
import { pgClientConfig, quoteIdent, type PgConnectionSettings } from '../connection';

/** Tables whose data pg_dump writes: ordinary and partitioned tables outside system schemas and extensions. */
const TABLES_SQL = `
  SELECT n.nspname AS schema, c.relname AS table, c.relkind::text AS relkind, c.relispartition AS ispartition, c.oid::int8 AS oid
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
  ORDER BY 1, 2`;

/**
 * Exact row counts in the snapshot of `client`'s transaction. Leaf tables are counted; a
 * partitioned parent gets the sum of its leaf partitions (= `count(*)` on the parent) without
 * scanning the data twice.
 */
export async function countRows(client: PgClient): Promise<TableRowCount[]> {
  const tables = (
    await client.query<{ schema: string; table: string; relkind: string; ispartition: boolean; oid: string }>(
      TABLES_SQL,
    )
  ).rows;
  const leafCounts = new Map<string, number>();
  const out: TableRowCount[] = [];
  for (const t of tables.filter((x) => x.relkind === 'r')) {
    const r = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${quoteIdent(t.schema)}.${quoteIdent(t.table)}`,
    );
    const rows = Number(r.rows[0]!.n);
    leafCounts.set(t.oid, rows);
    out.push({ schema: t.schema, table: t.table, kind: t.ispartition ? 'partition' : 'table', rows });
  }
  for (const t of tables.filter((x) => x.relkind === 'p')) {
    const leaves = await client.query<{ oid: string }>(
      'SELECT relid::oid::int8 AS oid FROM pg_partition_tree($1::oid) WHERE isleaf',
      [t.oid],
    );
    const rows = leaves.rows.reduce((sum, l) => sum + (leafCounts.get(l.oid) ?? 0), 0);
    out.push({ schema: t.schema, table: t.table, kind: 'partitioned', rows });
  }
  return out.sort((a, b) => (`${a.schema}.${a.table}` < `${b.schema}.${b.table}` ? -1 : 1));
}

/** The newest successful Flyway version, or null when the database has no history table. */
export async function schemaVersion(client: PgClient): Promise<string | null> {
  const exists = await client.query<{ t: string | null }>(
    "SELECT to_regclass('flyway_schema_history')::text AS t",
  );
  if (!exists.rows[0]?.t) return null;
  const r = await client.query<{ version: string }>(
    'SELECT version FROM flyway_schema_history WHERE success AND version IS NOT NULL ORDER BY installed_rank DESC LIMIT 1',
  );
  return r.rows[0]?.version ?? null;
}

/** Connects to the database to dump (its transaction exports the snapshot), or fails naming it. */
export async function openSnapshot(pg: PgConnectionSettings, database: string): Promise<PgClient> {
  const client = new Client(pgClientConfig(pg, database, 'dbops-backup'));
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    const e = err as { code?: string; message?: string };
    if (e.code === '3D000') {
      throw failure(
        FailureType.NotFound,
        `database ${database} does not exist on ${pg.host}:${pg.port}: check the name (DBOPS_DATABASES or --db)`,
      );
    }
    throw failure(
      FailureType.Unavailable,
      `cannot connect to database ${database} on ${pg.host}:${pg.port}: ${e.message}`,
    );
  }
  return client;
}
