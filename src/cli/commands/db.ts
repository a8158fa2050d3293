import { Presets } from 'cli-progress';
import type { Command } from 'commander';
import { seedDatabase, validateSeedOptions, type SeedResult } from '../../seed';
import { getConfig } from '../../config';
import { createProgress, humanBytes, humanDuration, plural, printJson, printTable } from '../output';
import { databaseOption, numberOption } from '../options';
import { dbCommandGroup } from './db-lifecycle';

/** The `db` command group (init and cleanup are added to it elsewhere); here: `db seed`. */
export function registerDbCommand(program: Command): Command {
  const db = dbCommandGroup(program);
  registerSeedCommand(db);
  return db;
}

export function registerSeedCommand(db: Command): void {
  db.command('seed')
    .description(
      'fill an empty, migrated database with deterministic synthetic data (scale 1 ≈ 100k users, 50k items, 5M behaviors, ~2 GB)',
    )
    .requiredOption('--scale <n>', 'size factor, fractions allowed (0.01 = 1k users, 50k behaviors)')
    .option('--seed <n>', 'PRNG seed: the same seed gives the same data', '42')
    .option('--months <n>', 'months of behavior history, ending now', '12')
    .option('--database <name>', 'database to seed (default PGDATABASE)')
    .option('--json', 'machine-readable output')
    .action(
      async (opts: { scale: string; seed: string; months: string; database?: string; json?: boolean }) => {
        const config = getConfig();
        const database = databaseOption(config, opts.database);
        const input = {
          scale: numberOption('--scale', opts.scale),
          seed: numberOption('--seed', opts.seed),
          months: numberOption('--months', opts.months),
        };
        validateSeedOptions(input);
        const bar = opts.json
          ? undefined
          : createProgress({
              format: 'seeding {bar} {percentage}% | {value}/{total} rows | {table}',
              plainFormat: 'seeding: {percentage}% | {value}/{total} rows | {table}',
              preset: Presets.shades_classic,
            });
        let started = false;
        const result = await seedDatabase(config.pg, database, {
          ...input,
          onProgress: (p) => {
            if (!bar) return;
            if (!started) {
              bar.start(p.totalRows, 0, { table: p.table });
              started = true;
            }
            bar.update(p.doneRows, { table: p.table });
          },
        }).finally(() => bar?.stop());
        if (opts.json) printJson(result);
        else printSeedResult(result);
      },
    );
}

function printSeedResult(r: SeedResult): void {
  printTable(
    ['table', 'rows', 'time (two connections at once)'],
    [
      ...Object.entries(r.rows).map(([table, rows]) => [table, rows, humanDuration(r.tableMs[table] ?? 0)]),
      [
        'indexes, rebuilt after the load',
        '',
        humanDuration(
          Object.entries(r.tableMs)
            .filter(([key]) => key.startsWith('index '))
            .reduce((sum, [, ms]) => sum + ms, 0),
        ),
      ],
    ],
  );
  process.stdout.write(
    `seeded database ${r.database}: ${r.totalRows} rows in ${humanDuration(r.totalMs)} (${r.rowsPerSecond} rows/s), ` +
      `database size ${humanBytes(r.databaseBytes)}, seed ${r.plan.seed}, scale ${r.plan.scale}, ${plural(r.plan.months, 'month')}\n`,
  );
}
