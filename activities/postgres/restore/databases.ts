import type { Client } from 'pg';
import type { BackupManifest } from '../../../common/backup';
import { FailureType, failure } from '../../../common/failures';
import { assertDatabaseName, InputError } from '../../../common/names';
import { type WorkMark, parseDerivedDatabaseName, parseMark } from '../../../common/restore';
import { quoteIdent, withPg, type PgConnectionSettings } from '../connection';

/** Validates a name before it goes anywhere near SQL; InvalidInput names the problem. */
export function checkedName(name: string, what = 'database name'): string {
  try {
    assertDatabaseName(name, what);
  } catch (err) {
    if (err instanceof InputError) throw failure(FailureType.InvalidInput, err.message);
    throw err;
  }
  return name;
}

/** A maintenance database to connect to that is none of `busy` (a database cannot be renamed while we sit in it). */
export function maintenanceDb(pg: PgConnectionSettings, busy: readonly string[]): string {
  return [pg.database, 'postgres', 'template1'].find((d) => !busy.includes(d))!;
}

export async function databaseExists(client: Client, name: string): Promise<boolean> {
  return (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
}

/**
 * Creates an empty shadow or scratch database for workflow `workflowId` and marks it as that
 * workflow's (its comment), dropping first a leftover of an earlier attempt of the same workflow
 * (idempotent). A database of that name without this workflow's mark is someone else's: refused.
 */
export async function recreateDatabase(
  pg: PgConnectionSettings,
  name: string,
  workflowId: string,
): Promise<void> {
  const kind = droppableKind(name);
  await withPg(pg, maintenanceDb(pg, [name]), async (c) => {
    if (await databaseExists(c, name)) {
      await assertOwnWork(c, name, kind, workflowId);
      await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
    }
    await c.query(`CREATE DATABASE ${quoteIdent(name)} TEMPLATE template0`);
    // CREATE DATABASE cannot run in a transaction: a crash in between leaves an unmarked database,
    // which this workflow's retry refuses to drop (the message names it) and cleanup leaves alone.
    const mark: WorkMark = { dbops: kind, workflowId, createdAt: new Date().toISOString() };
    await commentOnDatabase(c, name, JSON.stringify(mark));
  });
}

/** Only shadow and verification scratch databases are ever dropped by dbops restore. */
function droppableKind(name: string): 'restore' | 'verify' {
  checkedName(name);
  const kind = parseDerivedDatabaseName(name)?.kind;
  if (kind !== 'restore' && kind !== 'verify') {
    throw failure(
      FailureType.Refused,
      `refusing to drop database ${name}: restore only drops its own shadow (<target>__restore_<time>) and scratch (<db>__verify_<time>) databases`,
    );
  }
  return kind;
}

async function assertOwnWork(
  c: Client,
  name: string,
  kind: 'restore' | 'verify',
  workflowId: string,
): Promise<void> {
  const mark = parseMark(await databaseComment(c, name));
  if (mark?.dbops === kind && mark.workflowId === workflowId) return;
  throw failure(
    FailureType.Refused,
    `refusing to drop database ${name}: its comment does not mark it as made by workflow ${workflowId} (${mark ? `its mark: ${mark.dbops} of workflow ${mark.workflowId}` : 'no dbops mark: not made by dbops, or left by a crash right after CREATE DATABASE'}); drop it yourself if it is not needed`,
  );
}

/** Drops this workflow's shadow or scratch database (only one it marked); a missing one is fine. */
export async function dropDerivedDatabase(
  pg: PgConnectionSettings,
  name: string,
  workflowId: string,
): Promise<boolean> {
  const kind = droppableKind(name);
  return withPg(pg, maintenanceDb(pg, [name]), async (c) => {
    if (!(await databaseExists(c, name))) return false;
    await assertOwnWork(c, name, kind, workflowId);
    await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
    return true;
  });
}

/** Same selection as the backup's manifest: ordinary and partitioned tables outside system schemas and extensions. */
const TABLES_SQL = `
  SELECT n.nspname AS schema, c.relname AS table, c.relkind::text AS relkind, c.relispartition AS ispartition
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
  ORDER BY 1, 2`;

export interface DatabaseFacts {
  readonly tables: Map<string, { kind: string; rows: number }>;
  readonly extensions: string[];
  readonly schemaVersion: string | null;
  readonly invalidIndexes: string[];
}

/** Exact counts of the leaf tables (partitioned parents are the sum of their leaves), extensions, schema version. */
export async function databaseFacts(
  pool: readonly Client[],
  onTable?: (name: string) => void,
): Promise<DatabaseFacts> {
  const c = pool[0]!;
  const rows = (
    await c.query<{ schema: string; table: string; relkind: string; ispartition: boolean }>(TABLES_SQL)
  ).rows;
  const tables = new Map<string, { kind: string; rows: number }>();
  for (const t of rows) {
    const kind = t.relkind === 'p' ? 'partitioned' : t.ispartition ? 'partition' : 'table';
    // A partitioned parent's count(*) scans its leaves again; the leaves are counted anyway.
    tables.set(`${t.schema}.${t.table}`, { kind, rows: -1 });
  }
  // Each connection takes the next table to count: the scans run side by side.
  const queue = rows.filter((t) => t.relkind !== 'p');
  await Promise.all(
    pool.map(async (client) => {
      for (let t = queue.shift(); t; t = queue.shift()) {
        const name = `${t.schema}.${t.table}`;
        onTable?.(name);
        const r = await client.query<{ n: string }>(
          `SELECT count(*) AS n FROM ONLY ${quoteIdent(t.schema)}.${quoteIdent(t.table)}`,
        );
        tables.get(name)!.rows = Number(r.rows[0]!.n);
      }
    }),
  );
  const extensions = (
    await c.query<{ extname: string }>(
      "SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1",
    )
  ).rows.map((r) => r.extname);
  let schemaVersion: string | null = null;
  if (
    (await c.query<{ t: string | null }>("SELECT to_regclass('flyway_schema_history')::text AS t")).rows[0]?.t
  ) {
    schemaVersion =
      (
        await c.query<{ version: string }>(
          'SELECT version FROM flyway_schema_history WHERE success AND version IS NOT NULL ORDER BY installed_rank DESC LIMIT 1',
        )
      ).rows[0]?.version ?? null;
  }
  const invalidIndexes = (
    await c.query<{ name: string }>(
      'SELECT i.indexrelid::regclass::text AS name FROM pg_index i WHERE NOT i.indisvalid OR NOT i.indisready ORDER BY 1',
    )
  ).rows.map((r) => r.name);
  return { tables, extensions, schemaVersion, invalidIndexes };
}

/** Differences between a restored database and its backup's manifest; empty when they match. */
export function compareWithManifest(
  facts: DatabaseFacts,
  manifest: Pick<BackupManifest, 'tables' | 'schemaVersion'>,
  extensions: readonly string[] | undefined,
): string[] {
  const problems: string[] = [];
  const expected = new Map(manifest.tables.map((t) => [`${t.schema}.${t.table}`, t]));
  for (const [name, t] of expected) {
    const got = facts.tables.get(name);
    if (!got) problems.push(`table ${name} is missing`);
    else if (t.kind !== 'partitioned' && got.rows !== t.rows)
      problems.push(`table ${name} has ${got.rows} rows, the backup had ${t.rows}`);
  }
  for (const name of facts.tables.keys())
    if (!expected.has(name)) problems.push(`table ${name} is not in the backup's manifest`);
  if ((facts.schemaVersion ?? null) !== (manifest.schemaVersion ?? null)) {
    problems.push(
      `schema version is ${facts.schemaVersion ?? 'none'}, the backup had ${manifest.schemaVersion ?? 'none'}`,
    );
  }
  for (const ext of extensions ?? [])
    if (!facts.extensions.includes(ext)) problems.push(`extension ${ext} is missing`);
  for (const idx of facts.invalidIndexes) problems.push(`index ${idx} is invalid`);
  return problems;
}

/**
 * Runs the statement PostgreSQL's format() builds from `template` and `args` (%I quotes a name, %L
 * a literal): names and comments reach the DDL only through the server's own quoting.
 */
async function runFormatted(c: Client, template: string, ...args: (string | null)[]): Promise<void> {
  const params = args.map((_, i) => `$${i + 2}::text`).join(', ');
  const sql = (
    await c.query<{ sql: string }>(`SELECT format($1::text, ${params}) AS sql`, [template, ...args])
  ).rows[0]!.sql;
  await c.query(sql);
}

/** `ALTER DATABASE <name> WITH <clause>`. */
export async function alterDatabase(
  c: Client,
  name: string,
  clause: 'ALLOW_CONNECTIONS false' | 'ALLOW_CONNECTIONS true',
): Promise<void> {
  await runFormatted(c, `ALTER DATABASE %I WITH ${clause}`, name);
}

export async function renameDatabase(c: Client, from: string, to: string): Promise<void> {
  await runFormatted(c, 'ALTER DATABASE %I RENAME TO %I', from, to);
}

/** `COMMENT ON DATABASE`; null removes the comment. */
export async function commentOnDatabase(c: Client, name: string, comment: string | null): Promise<void> {
  await runFormatted(c, 'COMMENT ON DATABASE %I IS %L', name, comment);
}

export async function databaseComment(c: Client, name: string): Promise<string | null> {
  const r = await c.query<{ c: string | null }>(
    "SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = $1",
    [name],
  );
  return r.rows[0]?.c ?? null;
}
