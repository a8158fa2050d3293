import type { Client } from 'pg';
import {
  type LeftoverDecision,
  leftoverWorkflowIds,
  parseLeftoverDatabase,
  planLeftoverDatabases,
} from '../../common/lifecycle';
import { quoteIdent } from './connection';
import { type BlockRelease, releaseStaleBlock } from './restore/swap';

export interface ExpiredRecommendationsResult {
  /** Lists deleted (or, in a dry run, that would be); their items and impressions cascade. */
  readonly lists: number;
  readonly batches: number;
  /** False when the database has no recommendation_lists table (V003 not applied). */
  readonly tablePresent: boolean;
}

/**
 * Deletes expired recommendation lists (V003: recommendation_lists.expires_at) in batches of
 * `batchRows`, each its own short transaction, so no long lock is held and autovacuum keeps up.
 */
export async function deleteExpiredRecommendations(
  client: Client,
  options: { batchRows: number; dryRun: boolean; onBatch?: (deleted: number) => void; signal?: AbortSignal },
): Promise<ExpiredRecommendationsResult> {
  const present = await client.query<{ r: string | null }>(
    `SELECT to_regclass('recommendation_lists')::text AS r`,
  );
  if (!present.rows[0]?.r) return { lists: 0, batches: 0, tablePresent: false };
  if (options.dryRun) {
    const r = await client.query<{ n: string }>(
      'SELECT count(*)::text AS n FROM recommendation_lists WHERE expires_at < now()',
    );
    return { lists: Number(r.rows[0]?.n ?? 0), batches: 0, tablePresent: true };
  }
  let lists = 0;
  let batches = 0;
  for (;;) {
    if (options.signal?.aborted) break;
    const r = await client.query(
      `WITH doomed AS (
         SELECT id FROM recommendation_lists WHERE expires_at < now()
          ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
       DELETE FROM recommendation_lists r USING doomed WHERE r.id = doomed.id`,
      [options.batchRows],
    );
    const n = r.rowCount ?? 0;
    if (n === 0) break;
    lists += n;
    batches++;
    options.onBatch?.(lists);
    if (n < options.batchRows) break;
  }
  return { lists, batches, tablePresent: true };
}

export interface LeftoverDatabasesResult {
  /** `target` refused connections after a dbops cut-over that died blocking it: let in again. */
  readonly released: BlockRelease;
  readonly decisions: readonly (LeftoverDecision & { readonly done: boolean })[];
}

/**
 * First lets connections into `target` again if a dbops cut-over blocked it and died (its session
 * is gone; see releaseStaleBlock), then drops the shadow, pre-restore and verification databases of
 * `target` that carry dbops' mark and are past their keep time (or whose workflow is over, by
 * `workflowStatus`, which looks up Temporal) and have no sessions. `client` must be connected to
 * another database (the maintenance one). A database a session connects to between the check and
 * the DROP makes the DROP fail: it is kept.
 */
export async function dropLeftoverDatabases(
  client: Client,
  target: string,
  options: {
    now: Date;
    keepDays: number;
    scratchMaxAgeMs: number;
    dryRun: boolean;
    workflowStatus?: (ids: string[]) => Promise<ReadonlyMap<string, string>>;
  },
): Promise<LeftoverDatabasesResult> {
  const released = await releaseStaleBlock(client, target, undefined, options.dryRun);
  // Only clients keep a database: an autovacuum worker (common on a freshly replaced target) is
  // stopped by DROP DATABASE itself, and counting it would keep an expired copy for no one.
  const r = await client.query<{ name: string; comment: string | null; connections: number }>(
    `SELECT d.datname AS name, shobj_description(d.oid, 'pg_database') AS comment,
            (SELECT count(*) FROM pg_stat_activity a
              WHERE a.datname = d.datname AND a.backend_type = 'client backend')::int AS connections
       FROM pg_database d
      WHERE NOT d.datistemplate AND starts_with(d.datname, $1)
      ORDER BY d.datname`,
    [`${target}__`],
  );
  const databases = r.rows.filter((row) => parseLeftoverDatabase(row.name)?.target === target);
  const ids = leftoverWorkflowIds(databases);
  const plan = planLeftoverDatabases({
    ...options,
    databases,
    workflowStatus: ids.length && options.workflowStatus ? await options.workflowStatus(ids) : undefined,
  });
  const decisions: LeftoverDatabasesResult['decisions'][number][] = [];
  for (const d of plan) {
    if (d.action !== 'drop' || options.dryRun) {
      decisions.push({ ...d, done: false });
      continue;
    }
    try {
      await client.query(`DROP DATABASE ${quoteIdent(d.database)}`);
      decisions.push({ ...d, done: true });
    } catch (err) {
      decisions.push({ ...d, action: 'keep', reason: `DROP failed: ${(err as Error).message}`, done: false });
    }
  }
  return { released, decisions };
}

/** VACUUM (ANALYZE) each table (names quoted); VACUUM cannot run inside a transaction. */
export async function vacuumAnalyze(client: Client, tables: readonly string[]): Promise<string[]> {
  const done: string[] = [];
  for (const t of tables) {
    const exists = await client.query<{ r: string | null }>('SELECT to_regclass($1)::text AS r', [t]);
    if (!exists.rows[0]?.r) continue;
    await client.query(`VACUUM (ANALYZE) ${quoteIdent(t)}`);
    done.push(t);
  }
  return done;
}
