import type { Client } from 'pg';
import { FailureType, failure } from '../../common/failures';
import {
  BEHAVIORS_DEFAULT_PARTITION,
  BEHAVIORS_TABLE,
  type Month,
  type PartitionRetentionDecision,
  type RetentionMode,
  partitionMonth,
  partitionName,
  partitionRange,
  planPartitionRetention,
} from '../../common/lifecycle';
import { quoteIdent } from './connection';

const PARENT = quoteIdent(BEHAVIORS_TABLE);
const DEFAULT = quoteIdent(BEHAVIORS_DEFAULT_PARTITION);
/** DDL on user_behaviors waits at most this long for a lock instead of queueing traffic behind it. */
const LOCK_TIMEOUT = '10s';

export interface PartitionInfo {
  readonly name: string;
  /** `FOR VALUES FROM (...) TO (...)` or `DEFAULT`. */
  readonly bound: string;
  readonly isDefault: boolean;
  /** Planner estimate (reltuples); null when the partition was never analyzed. */
  readonly rowEstimate: number | null;
  readonly bytes: number;
}

export interface PartitionStatus {
  readonly database: string;
  readonly partitions: readonly PartitionInfo[];
  /** Exact rows in the DEFAULT partition, by month: what maintenance will move. */
  readonly defaultRows: number;
  readonly defaultMonths: readonly { month: Month; rows: number }[];
}

async function requireBehaviorsTable(client: Client, database: string): Promise<void> {
  const r = await client.query<{ parent: string | null; def: string | null }>(
    'SELECT to_regclass($1)::text AS parent, to_regclass($2)::text AS def',
    [BEHAVIORS_TABLE, BEHAVIORS_DEFAULT_PARTITION],
  );
  if (!r.rows[0]?.parent || !r.rows[0]?.def) {
    throw failure(
      FailureType.Misconfigured,
      `database ${database} has no ${BEHAVIORS_TABLE} table with a ${BEHAVIORS_DEFAULT_PARTITION} partition: run "dbops db init --database ${database}" (or "dbops migrate") first`,
    );
  }
}

export async function listBehaviorPartitions(client: Client): Promise<PartitionInfo[]> {
  const r = await client.query<{ name: string; bound: string; estimate: string; bytes: string }>(
    `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound,
            c.reltuples::bigint::text AS estimate, pg_total_relation_size(c.oid)::text AS bytes
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = $1::regclass
      ORDER BY c.relname`,
    [BEHAVIORS_TABLE],
  );
  return r.rows.map((row) => ({
    name: row.name,
    bound: row.bound,
    isDefault: row.bound === 'DEFAULT',
    rowEstimate: Number(row.estimate) < 0 ? null : Number(row.estimate),
    bytes: Number(row.bytes),
  }));
}

async function defaultMonths(client: Client): Promise<{ month: Month; rows: number }[]> {
  const r = await client.query<{ month: string; rows: string }>(
    `SELECT to_char(date_trunc('month', created_at AT TIME ZONE 'UTC'), 'YYYY-MM') AS month, count(*)::text AS rows
       FROM ${DEFAULT} GROUP BY 1 ORDER BY 1`,
  );
  return r.rows.map((row) => ({ month: row.month, rows: Number(row.rows) }));
}

export async function partitionStatus(client: Client, database: string): Promise<PartitionStatus> {
  await requireBehaviorsTable(client, database);
  const months = await defaultMonths(client);
  return {
    database,
    partitions: await listBehaviorPartitions(client),
    defaultRows: months.reduce((sum, m) => sum + m.rows, 0),
    defaultMonths: months,
  };
}

/** Creates the missing monthly partitions fromMonth .. fromMonth + monthsAhead with V002's ensure_behavior_partitions(). */
export async function premakeBehaviorPartitions(
  client: Client,
  database: string,
  fromMonth: Month,
  monthsAhead: number,
): Promise<string[]> {
  await requireBehaviorsTable(client, database);
  const fn = await client.query<{ ok: string | null }>(
    `SELECT to_regprocedure('ensure_behavior_partitions(date,integer)')::text AS ok`,
  );
  if (!fn.rows[0]?.ok) {
    throw failure(
      FailureType.Misconfigured,
      `database ${database} has no ensure_behavior_partitions(date, int) function (migration V002): run the migrations first`,
    );
  }
  await client.query(`SET lock_timeout = '${LOCK_TIMEOUT}'`);
  const r = await client.query<{ name: string }>(
    'SELECT ensure_behavior_partitions AS name FROM ensure_behavior_partitions($1::date, $2::int)',
    [`${fromMonth}-01`, monthsAhead],
  );
  return r.rows.map((row) => row.name);
}

async function parentColumns(client: Client): Promise<string> {
  const r = await client.query<{ attname: string }>(
    `SELECT attname FROM pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [BEHAVIORS_TABLE],
  );
  return r.rows.map((row) => quoteIdent(row.attname)).join(', ');
}

export interface DrainedMonth {
  readonly month: Month;
  readonly partition: string;
  readonly rows: number;
  readonly batches: number;
}

export interface DrainProgress {
  readonly month: Month;
  readonly rowsThisMonth: number;
  readonly rowsTotal: number;
}

/**
 * Moves one month of rows out of DEFAULT into a new partition, in ONE transaction: a standalone
 * table LIKE the parent, INSERT ... SELECT from DEFAULT in batches of pages (progress after each
 * batch), one DELETE of the month from DEFAULT, a count check, then ATTACH (which proves DEFAULT
 * holds nothing of the range). DEFAULT is write-locked meanwhile (reads go on), so no row can
 * arrive or leave between copy and delete; any failure rolls everything back.
 */
async function drainMonth(
  client: Client,
  month: Month,
  batchRows: number,
  rowsBefore: number,
  onProgress: (p: DrainProgress) => void,
  signal: AbortSignal | undefined,
): Promise<DrainedMonth> {
  const name = partitionName(month);
  const { from, to } = partitionRange(month);
  const table = quoteIdent(name);
  await client.query('BEGIN');
  try {
    await client.query(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`);
    await client.query(`LOCK TABLE ${PARENT} IN SHARE UPDATE EXCLUSIVE MODE`);
    await client.query(`LOCK TABLE ${DEFAULT} IN EXCLUSIVE MODE`);
    // Another run (the schedule and a manual one) may have moved this month while we waited for the lock.
    const still = await client.query(
      `SELECT 1 FROM ${DEFAULT} WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz LIMIT 1`,
      [from, to],
    );
    if (!still.rowCount) {
      await client.query('ROLLBACK');
      return { month, partition: name, rows: 0, batches: 0 };
    }
    const existing = await client.query<{ r: string | null }>('SELECT to_regclass($1)::text AS r', [name]);
    if (existing.rows[0]?.r) {
      throw failure(
        FailureType.Refused,
        `cannot move the ${month} rows out of ${BEHAVIORS_DEFAULT_PARTITION}: a table ${name} already exists but is not a partition of ${BEHAVIORS_TABLE} (a detached or hand-made table?); rename or drop it, then rerun`,
      );
    }
    const cols = await parentColumns(client);
    await client.query(`CREATE TABLE ${table} (LIKE ${PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`);
    // Batches are ranges of DEFAULT's pages (TID range scans): DEFAULT is write-locked, so its
    // size and row positions are fixed until commit, and every page is read exactly once.
    await client.query(`ANALYZE ${DEFAULT}`);
    const shape = await client.query<{ pages: string; per_page: string }>(
      `SELECT (pg_relation_size(c.oid) / current_setting('block_size')::int)::text AS pages,
              CASE WHEN c.relpages > 0 AND c.reltuples > 0 THEN (c.reltuples / c.relpages)::text ELSE '50' END AS per_page
         FROM pg_class c WHERE c.oid = $1::regclass`,
      [BEHAVIORS_DEFAULT_PARTITION],
    );
    const pages = Number(shape.rows[0]?.pages ?? 0);
    const pagesPerBatch = Math.max(1, Math.floor(batchRows / Math.max(1, Number(shape.rows[0]?.per_page))));
    let copied = 0;
    let batches = 0;
    // Only a TID range scan reads just the batch's pages; never let the planner pick another plan.
    await client.query('SET LOCAL enable_seqscan = off');
    await client.query('SET LOCAL enable_indexscan = off');
    await client.query('SET LOCAL enable_bitmapscan = off');
    for (let page = 0; page < pages; page += pagesPerBatch) {
      if (signal?.aborted)
        throw failure(FailureType.TimedOut, `moving ${month} out of DEFAULT was cancelled`);
      const r = await client.query(
        `INSERT INTO ${table} (${cols})
         SELECT ${cols} FROM ${DEFAULT}
          WHERE ctid >= '(${page},0)'::tid AND ctid < '(${page + pagesPerBatch},0)'::tid
            AND created_at >= $1::timestamptz AND created_at < $2::timestamptz`,
        [from, to],
      );
      const n = r.rowCount ?? 0;
      batches++;
      if (n === 0) continue;
      copied += n;
      onProgress({ month, rowsThisMonth: copied, rowsTotal: rowsBefore + copied });
    }
    await client.query('RESET enable_seqscan');
    await client.query('RESET enable_indexscan');
    await client.query('RESET enable_bitmapscan');
    const deleted = await client.query(
      `DELETE FROM ${DEFAULT} WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz`,
      [from, to],
    );
    if (deleted.rowCount !== copied) {
      throw failure(
        FailureType.IntegrityCheckFailed,
        `moving ${month} out of ${BEHAVIORS_DEFAULT_PARTITION}: copied ${copied} rows but the delete removed ${deleted.rowCount}; rolled back, nothing changed`,
      );
    }
    await client.query(
      `ALTER TABLE ${PARENT} ATTACH PARTITION ${table} FOR VALUES FROM ('${from}') TO ('${to}')`,
    );
    await client.query('COMMIT');
    return { month, partition: name, rows: copied, batches };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

export interface DrainResult {
  readonly database: string;
  readonly moved: readonly DrainedMonth[];
  readonly rows: number;
}

/** Drains every month found in DEFAULT into its own partition (see drainMonth), oldest first. */
export async function drainDefaultPartition(
  client: Client,
  database: string,
  options: { batchRows: number; onProgress?: (p: DrainProgress) => void; signal?: AbortSignal },
): Promise<DrainResult> {
  await requireBehaviorsTable(client, database);
  const moved: DrainedMonth[] = [];
  let total = 0;
  for (const { month } of await defaultMonths(client)) {
    const done = await drainMonth(
      client,
      month,
      options.batchRows,
      total,
      options.onProgress ?? (() => undefined),
      options.signal,
    );
    if (done.rows === 0) continue;
    moved.push(done);
    total += done.rows;
  }
  if (moved.length) {
    await client.query(`VACUUM (ANALYZE) ${DEFAULT}`);
    for (const m of moved) await client.query(`ANALYZE ${quoteIdent(m.partition)}`);
  }
  return { database, moved, rows: total };
}

export interface RetentionResult {
  readonly database: string;
  readonly dryRun: boolean;
  readonly decisions: readonly (PartitionRetentionDecision & {
    readonly rowEstimate: number | null;
    readonly bytes: number;
    readonly done: boolean;
  })[];
}

/**
 * Drops (or detaches and renames to `<name>_detached`) the partitions past retention that a
 * verified backup covers; the rule itself is planPartitionRetention. Refused partitions are
 * reported with the reason and left alone. Dry run only plans.
 */
export async function applyPartitionRetention(
  client: Client,
  database: string,
  input: {
    now: Date;
    retentionMonths: number;
    mode: RetentionMode;
    verifiedBackups: readonly string[];
    dryRun: boolean;
  },
): Promise<RetentionResult> {
  await requireBehaviorsTable(client, database);
  const partitions = (await listBehaviorPartitions(client)).filter((p) => partitionMonth(p.name));
  const byName = new Map(partitions.map((p) => [p.name, p]));
  const plan = planPartitionRetention({ ...input, partitions: partitions.map((p) => p.name) });
  const decisions: RetentionResult['decisions'][number][] = [];
  for (const d of plan) {
    const info = byName.get(d.partition);
    let done = false;
    if (!input.dryRun && d.action !== 'refuse') {
      await client.query('BEGIN');
      try {
        await client.query(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`);
        const table = quoteIdent(d.partition);
        if (d.action === 'drop') {
          await client.query(`DROP TABLE ${table}`);
        } else {
          await client.query(`ALTER TABLE ${PARENT} DETACH PARTITION ${table}`);
          await client.query(`ALTER TABLE ${table} RENAME TO ${quoteIdent(`${d.partition}_detached`)}`);
        }
        await client.query('COMMIT');
        done = true;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw failure(
          FailureType.Unavailable,
          `could not ${d.action} partition ${d.partition} of ${database}: ${(err as Error).message}`,
        );
      }
    }
    decisions.push({ ...d, rowEstimate: info?.rowEstimate ?? null, bytes: info?.bytes ?? 0, done });
  }
  if (decisions.some((d) => d.done)) await client.query(`ANALYZE ${PARENT}`);
  return { database, dryRun: input.dryRun, decisions };
}
