import type { Client } from 'pg';
import type { BackupManifest } from '../../../common/backup';
import { FailureType, failure } from '../../../common/failures';
import { assertDatabaseName, InputError } from '../../../common/names';
import { type PreRestoreComment, parseDerivedDatabaseName } from '../../../common/restore';
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

/** Creates an empty database for a restore (dropping a leftover of a previous attempt: idempotent). */
export async function recreateDatabase(pg: PgConnectionSettings, name: string): Promise<void> {
  assertDroppable(name);
  await withPg(pg, maintenanceDb(pg, [name]), async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${quoteIdent(name)} TEMPLATE template0`);
  });
}

/** Only shadow and verification scratch databases are ever dropped by dbops restore. */
function assertDroppable(name: string): void {
  checkedName(name);
  const kind = parseDerivedDatabaseName(name)?.kind;
  if (kind !== 'restore' && kind !== 'verify') {
    throw failure(
      FailureType.Refused,
      `refusing to drop database ${name}: restore only drops its own shadow (<target>__restore_<time>) and scratch (<db>__verify_<time>) databases`,
    );
  }
}

export async function dropDerivedDatabase(pg: PgConnectionSettings, name: string): Promise<boolean> {
  assertDroppable(name);
  return withPg(pg, maintenanceDb(pg, [name]), async (c) => {
    const existed = await databaseExists(c, name);
    await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
    return existed;
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

async function sessionsOn(c: Client, name: string): Promise<number> {
  const r = await c.query<{ n: string }>(
    'SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
    [name],
  );
  return Number(r.rows[0]!.n);
}

async function terminateSessions(c: Client, name: string, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    await c.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [name],
    );
    if ((await sessionsOn(c, name)) === 0) return;
    if (Date.now() > until) {
      throw failure(
        FailureType.TimedOut,
        `sessions on database ${name} did not end within ${deadlineMs} ms after pg_terminate_backend`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs `ALTER DATABASE <name> <clause>` with the name quoted server-side by format('%I'). */
async function alterDatabase(
  c: Client,
  name: string,
  clause: 'ALLOW_CONNECTIONS false' | 'ALLOW_CONNECTIONS true',
): Promise<void> {
  const sql = (
    await c.query<{ sql: string }>(`SELECT format('ALTER DATABASE %I WITH ${clause}', $1::text) AS sql`, [
      name,
    ])
  ).rows[0]!.sql;
  await c.query(sql);
}

async function renameDatabase(c: Client, from: string, to: string): Promise<void> {
  const sql = (
    await c.query<{ sql: string }>(
      "SELECT format('ALTER DATABASE %I RENAME TO %I', $1::text, $2::text) AS sql",
      [from, to],
    )
  ).rows[0]!.sql;
  await c.query(sql);
}

async function commentOnDatabase(c: Client, name: string, comment: string | null): Promise<void> {
  const sql = (
    await c.query<{ sql: string }>(
      "SELECT format('COMMENT ON DATABASE %I IS %L', $1::text, $2::text) AS sql",
      [name, comment],
    )
  ).rows[0]!.sql;
  await c.query(sql);
}

export interface SwapInput {
  readonly target: string;
  /** The database that becomes `target` (the restored shadow, or the kept one on rollback). */
  readonly incoming: string;
  /** The name the current `target` gets (a pre-restore name); kept with a comment for cleanup and rollback. */
  readonly outgoing: string;
  readonly comment: PreRestoreComment;
}

/**
 * The comment the swap leaves on the database it swapped in: proof, on a retry, that this swap (not
 * something else) is why `incoming` is gone and `target` exists.
 */
export interface SwappedInComment {
  readonly dbops: 'swapped_in';
  readonly from: string;
  readonly workflowId: string;
}

function swappedInBy(comment: string | null, from: string, workflowId: string): boolean {
  try {
    const c = JSON.parse(comment ?? '') as Partial<SwappedInComment>;
    return c.dbops === 'swapped_in' && c.from === from && c.workflowId === workflowId;
  } catch {
    return false;
  }
}

export interface SwapResult {
  readonly cutoverMs: number;
  readonly terminatedSessions: number;
  readonly targetExisted: boolean;
  /**
   * True when a previous attempt of this run had already swapped (idempotent retry), proven by the
   * swapped_in comment that attempt left on the target, not assumed from the names alone.
   */
  readonly alreadyDone: boolean;
}

/**
 * The cut-over: block new connections to `target`, end its sessions, then in ONE transaction rename
 * target → outgoing and incoming → target (clients see the old or the new database, never none),
 * record the comment on the outgoing one and let connections in again. Idempotent.
 */
export async function swapDatabases(pg: PgConnectionSettings, input: SwapInput): Promise<SwapResult> {
  const { target, incoming, outgoing } = input;
  for (const n of [target, incoming, outgoing]) checkedName(n);
  return withPg(pg, maintenanceDb(pg, [target, incoming, outgoing]), async (c) => {
    const [t, i, o] = [
      await databaseExists(c, target),
      await databaseExists(c, incoming),
      await databaseExists(c, outgoing),
    ];
    // A retry after a committed swap finds incoming gone and target present, and so does a swap
    // whose incoming database was dropped meanwhile (db cleanup of a kept copy or of an old shadow):
    // only the comment this swap wrote on target tells them apart. Never report the second as done.
    if (!i && t && swappedInBy(await databaseComment(c, target), incoming, input.comment.workflowId)) {
      return { cutoverMs: 0, terminatedSessions: 0, targetExisted: o, alreadyDone: true };
    }
    if (!i)
      throw failure(
        FailureType.NotFound,
        `database ${incoming} does not exist: nothing to swap into ${target}, which is unchanged` +
          (t ? ' (it was dropped, e.g. by db cleanup, or never made; no swap of this run put it there)' : ''),
      );
    if (o)
      throw failure(FailureType.Refused, `database ${outgoing} already exists: refusing to overwrite it`);
    const started = performance.now();
    let terminated = 0;
    let blocked = false;
    try {
      await terminateSessions(c, incoming, 5000);
      if (t) {
        await alterDatabase(c, target, 'ALLOW_CONNECTIONS false');
        blocked = true;
        terminated = await sessionsOn(c, target);
        await terminateSessions(c, target, 10_000);
      }
      for (let attempt = 1; ; attempt++) {
        try {
          await c.query('BEGIN');
          if (t) await renameDatabase(c, target, outgoing);
          await renameDatabase(c, incoming, target);
          if (t) {
            await commentOnDatabase(c, outgoing, JSON.stringify(input.comment));
            await alterDatabase(c, outgoing, 'ALLOW_CONNECTIONS true');
          }
          const swappedIn: SwappedInComment = {
            dbops: 'swapped_in',
            from: incoming,
            workflowId: input.comment.workflowId,
          };
          await commentOnDatabase(c, target, JSON.stringify(swappedIn));
          await alterDatabase(c, target, 'ALLOW_CONNECTIONS true');
          await c.query('COMMIT');
          blocked = false;
          break;
        } catch (err) {
          await c.query('ROLLBACK').catch(() => undefined);
          // 55006: a session slipped in (e.g. a superuser) between termination and rename: end it and retry.
          if ((err as { code?: string }).code !== '55006' || attempt >= 5) throw err;
          if (t) await terminateSessions(c, target, 5000);
          await terminateSessions(c, incoming, 5000);
        }
      }
    } finally {
      if (blocked) await alterDatabase(c, target, 'ALLOW_CONNECTIONS true').catch(() => undefined);
    }
    return {
      cutoverMs: Math.round(performance.now() - started),
      terminatedSessions: terminated,
      targetExisted: t,
      alreadyDone: false,
    };
  });
}

async function databaseComment(c: Client, name: string): Promise<string | null> {
  const r = await c.query<{ c: string | null }>(
    "SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = $1",
    [name],
  );
  return r.rows[0]?.c ?? null;
}

export async function readDatabaseComment(pg: PgConnectionSettings, name: string): Promise<string | null> {
  return withPg(pg, undefined, (c) => databaseComment(c, name));
}
