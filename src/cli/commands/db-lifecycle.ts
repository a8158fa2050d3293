import type { Command } from 'commander';
import {
  deleteExpiredRecommendations,
  dropLeftoverDatabases,
  vacuumAnalyze,
} from '../../../activities/postgres/cleanup';
import { withPg } from '../../../activities/postgres/connection';
import { type InitResult, initDatabase } from '../../../activities/postgres/init';
import { migrateFn } from '../../../activities/postgres/migrate';
import { applyPartitionRetention } from '../../../activities/postgres/partitions';
import { createBackupStore, listBackupEntries } from '../../../activities/storage';
import { verifiedBackupTimes } from '../../../common/lifecycle';
import { type Config, getConfig } from '../../config';
import { plural, printJson, printTable } from '../output';
import { databaseOption } from './partitions';

/** Shadow and verification scratch databases are in use for at most this long. */
export const SCRATCH_MAX_AGE_MS = 24 * 3_600_000;
const CLEANUP_BATCH_ROWS = 10_000;
const RECOMMENDATION_TABLES = ['recommendation_lists', 'recommendation_items', 'recommendation_impressions'];

export interface CleanupRow {
  readonly step: string;
  readonly object: string;
  readonly action: string;
  readonly result: string;
}

/**
 * `dbops db cleanup`: expired recommendations, partitions past retention (only with a verified
 * backup newer than their end), leftover restore/verification databases, then VACUUM (ANALYZE)
 * of what changed. Runs in this process; with dryRun it only reads.
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

  const maintenanceDb = config.pg.database === database ? 'postgres' : config.pg.database;
  await withPg(config.pg, maintenanceDb, async (client) => {
    const leftovers = await dropLeftoverDatabases(client, database, {
      now,
      keepDays: config.restore.keepDays,
      scratchMaxAgeMs: SCRATCH_MAX_AGE_MS,
      dryRun,
    });
    if (!leftovers.decisions.length) {
      rows.push({ step: 'leftover databases', object: `${database}__*`, action: '-', result: 'none' });
    }
    for (const d of leftovers.decisions) {
      rows.push({
        step: `leftover ${d.kind} database`,
        object: d.database,
        action: d.action,
        result: d.action === 'drop' ? `${verb(d.done, 'drop')}: ${d.reason}` : d.reason,
      });
    }
  });
  return rows;
}

export function printInitResult(r: InitResult): void {
  printTable(
    ['step', 'result'],
    r.steps.map((s) => [s.step, s.result]),
  );
}

/** Adds `init` and `cleanup` to the `db` command group. */
export function registerDbLifecycleCommands(db: Command): void {
  db.command('init')
    .description(
      'create the application role and database if missing, enable extensions, run migrations (idempotent)',
    )
    .option('--database <name>', 'database to create/migrate (default PGDATABASE)')
    .option('--role <name>', 'application role, owner of the database (default DBOPS_APP_ROLE)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { database?: string; role?: string; json?: boolean }) => {
      const config = getConfig();
      const database = databaseOption(config, opts.database);
      const result = await initDatabase(
        config.pg,
        { database, role: opts.role ?? config.appRole },
        migrateFn({ pg: config.pg, migrations: config.migrations }, (p) => {
          if (p.phase === 'applying')
            process.stderr.write(`migrating ${database} to version ${p.version} ...\n`);
        }),
      );
      if (opts.json) printJson(result);
      else printInitResult(result);
    });

  db.command('cleanup')
    .description(
      'delete expired recommendations, drop partitions past retention (only when a verified backup covers them), drop leftover restore and verification databases, VACUUM (ANALYZE)',
    )
    .option('--database <name>', 'database (default PGDATABASE)')
    .option('--dry-run', 'only report what would be done; change nothing')
    .option('--json', 'machine-readable output')
    .action(async (opts: { database?: string; dryRun?: boolean; json?: boolean }) => {
      const config = getConfig();
      const database = databaseOption(config, opts.database);
      const rows = await runCleanup(config, { database, dryRun: Boolean(opts.dryRun) });
      if (opts.json) printJson({ database, dryRun: Boolean(opts.dryRun), rows });
      else {
        if (opts.dryRun) process.stdout.write('dry run: nothing was changed\n');
        printTable(
          ['step', 'object', 'action', 'result'],
          rows.map((r) => [r.step, r.object, r.action, r.result]),
        );
      }
    });
}

/** The `db` command group: the one `registerDbCommand` made if it ran first, else a new one. */
export function dbCommandGroup(program: Command): Command {
  return (
    program.commands.find((c) => c.name() === 'db') ??
    program.command('db').description('database lifecycle: init, seed, cleanup')
  );
}
