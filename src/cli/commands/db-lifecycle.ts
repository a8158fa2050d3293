import type { Command } from 'commander';
import { type InitResult, initDatabase } from '../../../activities/postgres/init';
import { migrateFn } from '../../../activities/postgres/migrate';
import { runCleanup } from '../../client/cleanup';
import { getConfig } from '../../config';
import { databaseOption } from '../options';
import { printJson, printTable } from '../output';

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
