import type { Client } from 'pg';
import { quoteIdent } from '../connection';

/** One row of flyway_schema_history. */
export interface HistoryRow {
  readonly installedRank: number;
  readonly version: string | null;
  readonly description: string;
  readonly type: string;
  readonly script: string;
  readonly checksum: number | null;
  readonly installedBy: string;
  readonly installedOn: string;
  readonly executionTime: number;
  readonly success: boolean;
}

export interface HistoryTable {
  readonly schema: string;
  readonly table: string;
}

export const qualified = (h: HistoryTable) => `${quoteIdent(h.schema)}.${quoteIdent(h.table)}`;

/** What Flyway 10 creates on PostgreSQL (same columns, PK and index names). */
export function createHistorySql(h: HistoryTable): string {
  const t = qualified(h);
  return `CREATE TABLE ${t} (
    "installed_rank" INT NOT NULL,
    "version" VARCHAR(50),
    "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL,
    "script" VARCHAR(1000) NOT NULL,
    "checksum" INTEGER,
    "installed_by" VARCHAR(100) NOT NULL,
    "installed_on" TIMESTAMP NOT NULL DEFAULT now(),
    "execution_time" INTEGER NOT NULL,
    "success" BOOLEAN NOT NULL
);
ALTER TABLE ${t} ADD CONSTRAINT ${quoteIdent(`${h.table}_pk`)} PRIMARY KEY ("installed_rank");
CREATE INDEX ${quoteIdent(`${h.table}_s_idx`)} ON ${t} ("success");`;
}

export async function historyExists(client: Client, h: HistoryTable): Promise<boolean> {
  const r = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [qualified(h)]);
  return r.rows[0]?.t != null;
}

export async function schemaExists(client: Client, schema: string): Promise<boolean> {
  const r = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
  return (r.rowCount ?? 0) > 0;
}

export async function readHistory(client: Client, h: HistoryTable): Promise<HistoryRow[]> {
  if (!(await historyExists(client, h))) return [];
  const r = await client.query<{
    installed_rank: number;
    version: string | null;
    description: string;
    type: string;
    script: string;
    checksum: number | null;
    installed_by: string;
    installed_on: string;
    execution_time: number;
    success: boolean;
  }>(
    `SELECT installed_rank, version, description, type, script, checksum, installed_by,
            to_char(installed_on, 'YYYY-MM-DD"T"HH24:MI:SS.MS') AS installed_on, execution_time, success
       FROM ${qualified(h)} ORDER BY installed_rank`,
  );
  return r.rows.map((row) => ({
    installedRank: row.installed_rank,
    version: row.version,
    description: row.description,
    type: row.type,
    script: row.script,
    checksum: row.checksum,
    installedBy: row.installed_by,
    installedOn: row.installed_on,
    executionTime: row.execution_time,
    success: row.success,
  }));
}

export interface NewHistoryRow {
  readonly version: string | null;
  readonly description: string;
  readonly type: string;
  readonly script: string;
  readonly checksum: number | null;
  readonly executionTime: number;
  readonly success: boolean;
  /** Flyway writes its schema-creation marker with rank 0. */
  readonly rank?: number;
}

/** Appends a row with the next rank, installed_by = current_user, as Flyway does. */
export async function insertHistory(client: Client, h: HistoryTable, row: NewHistoryRow): Promise<void> {
  const t = qualified(h);
  await client.query(
    `INSERT INTO ${t} (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success)
     VALUES (COALESCE($1, (SELECT COALESCE(max(installed_rank), 0) + 1 FROM ${t})), $2, $3, $4, $5, $6, current_user, $7, $8)`,
    [
      row.rank ?? null,
      row.version,
      row.description,
      row.type,
      row.script,
      row.checksum,
      row.executionTime,
      row.success,
    ],
  );
}
