import type { Command } from 'commander';
import { migratorOptions } from '../../../activities/postgres/migrate';
import {
  baseline,
  info,
  migrate,
  repair,
  validate,
  type MigrateSummary,
} from '../../../activities/postgres/migrations/migrator';
import {
  migrateAdoptingSpecSchema,
  type TakeoverResult,
} from '../../../activities/postgres/migrations/spec-takeover';
import { failure, FailureType } from '../../../common/failures';
import { getConfig } from '../../config';
import { humanDuration, plural, printJson, printTable } from '../output';
import { databaseOption } from '../options';

interface CommonOpts {
  database?: string;
  json?: boolean;
}

function options(opts: CommonOpts, verbose = false) {
  const config = getConfig();
  const database = databaseOption(config, opts.database);
  return {
    ...migratorOptions({ pg: config.pg, migrations: config.migrations }, database),
    onProgress: verbose
      ? (p: Parameters<NonNullable<ReturnType<typeof migratorOptions>['onProgress']>>[0]) => {
          if (p.phase === 'applying')
            process.stderr.write(`migrating ${database} to version ${p.version} (${p.script}) ...\n`);
          if (p.phase === 'waiting-for-lock' && p.waitedMs > 0 && p.waitedMs % 5000 < 1000) {
            process.stderr.write(`waiting for another migrator to finish (${humanDuration(p.waitedMs)})\n`);
          }
        }
      : undefined,
  };
}

function printMigrateSummary(s: MigrateSummary): void {
  const verb = s.dryRun ? 'would apply' : 'applied';
  if (!s.migrations.length) {
    process.stdout.write(
      `database ${s.database} is up to date (version ${s.initialVersion ?? '<none>'}): nothing to migrate\n`,
    );
    return;
  }
  printTable(
    s.dryRun ? ['version', 'description', 'script'] : ['version', 'description', 'script', 'time'],
    s.migrations.map((m) =>
      s.dryRun
        ? [m.version, m.description, m.script]
        : [m.version, m.description, m.script, humanDuration(m.executionTimeMs)],
    ),
  );
  process.stdout.write(
    `${verb} ${plural(s.migrations.length, 'migration')} to database ${s.database}: version ${s.initialVersion ?? '<none>'} -> ${s.finalVersion}` +
      `${s.dryRun ? ' (dry run: nothing was changed)' : ` in ${humanDuration(s.totalMs)}`}\n`,
  );
}

function printTakeover(t: TakeoverResult): void {
  if (t.status === 'already-taken-over') {
    process.stdout.write(
      `database ${t.database}: the spec's schema was already taken over on ${t.takenOverOn}: nothing to take over\n`,
    );
    return;
  }
  const lines = [...t.statements, ...t.historyChanges.map((c) => `flyway_schema_history ${c}`)];
  process.stdout.write(
    `${t.dryRun ? 'would take over' : 'took over'} the spec's schema of database ${t.database}` +
      `${t.dryRun ? ' (dry run: nothing was changed)' : ` in ${humanDuration(t.executionTimeMs)}`}:\n  ${lines.join('\n  ')}\n`,
  );
}

const withDb = (cmd: Command) =>
  cmd
    .option('--database <name>', 'database to act on (default PGDATABASE)')
    .option('--json', 'machine-readable output');

export function registerMigrateCommand(program: Command): void {
  withDb(program.command('migrate'))
    .description('apply pending migrations from DBOPS_MIGRATIONS_DIR (Flyway-compatible history)')
    .option('--dry-run', 'print what would run; change nothing')
    .option(
      '--adopt-spec-schema',
      "first take over a database the spec's V001/V002 built (refuses any other), then migrate",
    )
    .action(async (opts: CommonOpts & { dryRun?: boolean; adoptSpecSchema?: boolean }) => {
      if (opts.adoptSpecSchema) {
        const r = await migrateAdoptingSpecSchema(options(opts, !opts.json), Boolean(opts.dryRun));
        if (opts.json) return printJson(r);
        printTakeover(r.takeover);
        return printMigrateSummary(r.migrate);
      }
      const s = await migrate(options(opts, !opts.json), Boolean(opts.dryRun));
      if (opts.json) printJson(s);
      else printMigrateSummary(s);
    });

  withDb(program.command('info'))
    .description('list migrations with their state, like `flyway info`')
    .action(async (opts: CommonOpts) => {
      const r = await info(options(opts));
      if (opts.json) return printJson(r);
      printTable(
        ['Category', 'Version', 'Description', 'Type', 'Installed On', 'State'],
        r.migrations.map((m) => [
          m.type === 'SCHEMA' ? '' : 'Versioned',
          m.version,
          m.description,
          m.type,
          m.installedOn ?? '',
          m.state,
        ]),
      );
      process.stdout.write(`current version: ${r.currentVersion ?? '<none>'}\n`);
    });

  withDb(program.command('validate'))
    .description(
      'check applied migrations against the files (checksums, descriptions, failed, missing, out of order, pending)',
    )
    .action(async (opts: CommonOpts) => {
      const r = await validate(options(opts));
      if (opts.json) printJson(r);
      else if (r.valid) process.stdout.write(`database ${r.database}: migrations are valid\n`);
      else
        process.stderr.write(`database ${r.database}: validation failed:\n  - ${r.errors.join('\n  - ')}\n`);
      if (!r.valid) process.exitCode = 1;
    });

  withDb(program.command('repair'))
    .description(
      'remove failed history rows, realign checksums/descriptions with the files, mark missing migrations deleted',
    )
    .action(async (opts: CommonOpts) => {
      const r = await repair(options(opts));
      if (opts.json) return printJson(r);
      const line = (label: string, list: string[]) => `${label}: ${list.length ? list.join(', ') : 'none'}\n`;
      process.stdout.write(
        line('removed failed rows', r.removedFailed) +
          line('realigned', r.realigned) +
          line('marked deleted', r.markedDeleted),
      );
    });

  withDb(program.command('baseline'))
    .description(
      'record an existing (unmanaged) database as being at a version; older migrations are skipped',
    )
    .requiredOption('--version <version>', 'the version the database is already at, e.g. 3')
    .option('--description <text>', 'history description', '<< Flyway Baseline >>')
    .action(async (opts: CommonOpts & { version: string; description: string }) => {
      if (!opts.version) throw failure(FailureType.InvalidInput, '--version is required, e.g. --version 3');
      const r = await baseline(options(opts), opts.version, opts.description);
      if (opts.json) printJson(r);
      else process.stdout.write(`database ${r.database} baselined at version ${r.baselineVersion}\n`);
    });
}
