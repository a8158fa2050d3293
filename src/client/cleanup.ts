import type { Client } from 'pg';
import {
  deleteExpiredRecommendations,
  dropLeftoverDatabases,
  type LeftoverDatabasesResult,
  vacuumAnalyze,
} from '../../activities/postgres/cleanup';
import { describeServer, withPg } from '../../activities/postgres/connection';
import { applyPartitionRetention } from '../../activities/postgres/partitions';
import { createBackupStore, listBackupEntries } from '../../activities/storage';
import { verifiedBackupTimes } from '../../common/lifecycle';
import { plural } from '../../common/text';
import type { Config } from '../config';
import { withClient } from './connection';

/** Shadow and verification scratch databases are in use for at most this long. */
export const SCRATCH_MAX_AGE_MS = 24 * 3_600_000;
const CLEANUP_BATCH_ROWS = 10_000;
const RECOMMENDATION_TABLES = ['recommendation_lists', 'recommendation_items', 'recommendation_impressions'];

/** Temporal status of each workflow where it can be read (missing, or no server: unknown, the age rule decides). */
async function workflowStatuses(config: Config, ids: string[]): Promise<ReadonlyMap<string, string>> {
  const out = new Map<string, string>();
  await withClient(config, async (client) => {
    for (const id of ids) {
      const d = await client.workflow
        .getHandle(id)
        .describe()
        .catch(() => undefined);
      if (d) out.set(id, d.status.name);
    }
  }).catch(() => undefined);
  return out;
}

export interface CleanupRow {
  readonly step: string;
  readonly object: string;
  readonly action: string;
  readonly result: string;
}

/** Lets in connections a dead cut-over blocked and drops dbops' leftover databases of `database` on `client`'s server. */
async function leftoverRows(
  client: Client,
  input: { config: Config; database: string; now: Date; dryRun: boolean },
  rows: CleanupRow[],
  where = '',
): Promise<LeftoverDatabasesResult['released']> {
  const { config, database, dryRun } = input;
  const verb = (done: boolean, planned: string) => (dryRun ? `would ${planned}` : done ? 'done' : 'kept');
  const leftovers = await dropLeftoverDatabases(client, database, {
    now: input.now,
    keepDays: config.restore.keepDays,
    scratchMaxAgeMs: SCRATCH_MAX_AGE_MS,
    dryRun,
    workflowStatus: (ids) => workflowStatuses(config, ids),
  });
  const blocked = {
    released: ['allow connections', 'done: a dbops cut-over had died with it blocked'],
    stale: ['allow connections', 'would allow: a dbops cut-over died with it blocked'],
    held: ['-', 'kept: a dbops cut-over is running on it'],
  } as const;
  if (leftovers.released !== 'not-blocked') {
    const [action, result] = blocked[leftovers.released];
    rows.push({ step: 'blocked connections', object: `${database}${where}`, action, result });
  }
  if (!leftovers.decisions.length) {
    rows.push({ step: 'leftover databases', object: `${database}__*${where}`, action: '-', result: 'none' });
  }
  for (const d of leftovers.decisions) {
    rows.push({
      step: `leftover ${d.kind} database`,
      object: `${d.database}${where}`,
      action: d.action,
      result: d.action === 'drop' ? `${verb(d.done, 'drop')}: ${d.reason}` : d.reason,
    });
  }
  return leftovers.released;
}

/**
 * `dbops db cleanup`: connections let in again after a dead cut-over and leftover
 * restore/verification databases (only those dbops marked), expired recommendations, partitions
 * past retention (only with a verified backup newer than their end), then VACUUM (ANALYZE) of what
 * changed. Runs in this process; with dryRun it only reads.
 */
export async function runCleanup(
  config: Config,
  input: { database: string; dryRun: boolean; now?: Date },
): Promise<CleanupRow[]> {
  const { database, dryRun } = input;
  const now = input.now ?? new Date();
  const rows: CleanupRow[] = [];
  const verb = (done: boolean, planned: string) => (dryRun ? `would ${planned}` : done ? 'done' : 'kept');

  const store = createBackupStore(config.storage);
  let verified: string[];
  try {
    verified = verifiedBackupTimes(await listBackupEntries(store, database));
  } finally {
    await store.close();
  }

  // First: it lets connections in again when a dead cut-over left the database refusing them.
  const maintenanceDb = config.pg.database === database ? 'postgres' : config.pg.database;
  const leftovers = { now, dryRun, config, database };
  const released = await withPg(config.pg, maintenanceDb, (client) => leftoverRows(client, leftovers, rows));
  // Verification scratch databases live on the verification server when DBOPS_VERIFY_PGHOST names one.
  if (config.verifyPg) {
    const where = describeServer(config.verifyPg);
    await withPg(config.verifyPg, config.verifyPg.database, (client) =>
      leftoverRows(client, leftovers, rows, ` on ${where}`),
    );
  }
  if (released === 'held' || released === 'stale') {
    const why =
      released === 'held'
        ? 'a restore is swapping it right now; run cleanup again after it'
        : 'run cleanup without --dry-run to let them in';
    rows.push({
      step: 'in-database steps',
      object: database,
      action: '-',
      result: `skipped: ${database} refuses connections (${why})`,
    });
    return rows;
  }
  await withPg(config.pg, database, async (client) => {
    const recs = await deleteExpiredRecommendations(client, { batchRows: CLEANUP_BATCH_ROWS, dryRun });
    rows.push({
      step: 'expired recommendations',
      object: 'recommendation_lists',
      action: dryRun ? 'count' : 'delete',
      result: !recs.tablePresent
        ? 'no table (V003 not applied)'
        : dryRun
          ? `${plural(recs.lists, 'expired list')} would be deleted`
          : `${plural(recs.lists, 'list')} deleted in ${plural(recs.batches, 'batch', 'batches')}`,
    });

    const retention = await applyPartitionRetention(client, database, {
      now,
      retentionMonths: config.partitions.retentionMonths,
      mode: config.partitions.retentionMode,
      verifiedBackups: verified,
      dryRun,
    });
    if (!retention.decisions.length) {
      rows.push({
        step: 'partition retention',
        object: 'user_behaviors',
        action: '-',
        result: `no partition older than ${plural(config.partitions.retentionMonths, 'month')}`,
      });
    }
    for (const d of retention.decisions) {
      rows.push({
        step: 'partition retention',
        object: d.partition,
        action: d.action,
        result: d.action === 'refuse' ? `REFUSED: ${d.reason}` : `${verb(d.done, d.action)}: ${d.reason}`,
      });
    }

    if (!dryRun && recs.lists > 0) {
      const vacuumed = await vacuumAnalyze(client, RECOMMENDATION_TABLES);
      rows.push({ step: 'vacuum', object: vacuumed.join(', '), action: 'VACUUM (ANALYZE)', result: 'done' });
    }
  });

  return rows;
}
