import type { Command } from 'commander';
import { withClient } from '../../client/connection';
import { getConfig } from '../../config';
import { applySchedules } from '../../schedules';
import { knownSchedule, scheduleStates } from '../../schedules/state';
import { printJson, printTable } from '../output';

export function registerSchedulesCommand(program: Command): void {
  const schedules = program
    .command('schedules')
    .description('Temporal Schedules of dbops (daily backups, maintenance)');
  schedules
    .command('apply')
    .description('create or update every dbops schedule from the configuration (idempotent)')
    .option('--area <areas...>', 'only these areas (e.g. backup partitions)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean; area?: string[] }) => {
      const config = getConfig();
      const result = await withClient(config, (client) => applySchedules(client, config, opts.area));
      if (opts.json) printJson(result);
      else
        printTable(
          ['schedule', 'area', 'action'],
          result.map((r) => [r.id, r.area, r.action]),
        );
    });
  schedules
    .command('list')
    .description('dbops schedules with their next run and state')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const config = getConfig();
      const rows = await withClient(config, (client) => scheduleStates(client, config));
      if (opts.json) printJson(rows);
      else
        printTable(
          ['schedule', 'area', 'state', 'next run', 'last run'],
          rows.map((r) => [
            r.id,
            r.area,
            'missing' in r ? 'not applied' : r.paused ? 'paused' : 'active',
            r.nextRun,
            r.lastRun,
          ]),
        );
    });
  schedules
    .command('describe <id>')
    .description('full description of one schedule')
    .action(async (id: string) => {
      await withClient(getConfig(), async (client) =>
        printJson(await (await knownSchedule(client, id)).describe()),
      );
    });
  for (const [name, verb] of [
    ['pause', 'pause'],
    ['unpause', 'unpause'],
  ] as const) {
    schedules
      .command(`${name} <id>`)
      .description(`${name} a schedule`)
      .option('--note <text>', 'why (shown in the Web UI)')
      .action(async (id: string, opts: { note?: string }) => {
        await withClient(getConfig(), async (client) => {
          const handle = await knownSchedule(client, id);
          await handle[verb](opts.note ?? `${name}d with dbops`);
        });
        process.stdout.write(`${id} ${name}d\n`);
      });
  }
  schedules
    .command('trigger <id>')
    .description('run a schedule now (its overlap policy applies: a running backup is not doubled)')
    .action(async (id: string) => {
      await withClient(getConfig(), async (client) => (await knownSchedule(client, id)).trigger());
      process.stdout.write(`${id} triggered\n`);
    });
}
