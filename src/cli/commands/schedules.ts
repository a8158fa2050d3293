import type { Command } from 'commander';
import { withClient } from '../../client/connection';
import { getConfig } from '../../config';
import { type AppliedSchedule, type ApplyAction, applySchedules, scheduleRegistry } from '../../schedules';
import { AREA_MEMO_KEY } from '../../schedules/ownership';
import { knownSchedule, type ScheduleState, scheduleStates } from '../../schedules/state';
import { plural, printJson, printTable } from '../output';

const ACTION_TEXT: Record<ApplyAction, string> = {
  created: 'created',
  updated: 'updated',
  stale: 'stale, kept (dry run)',
  removed: 'removed',
};

/**
 * What an operator must know after `schedules apply`: the stale schedules that were only reported
 * and how to remove them, and the unmarked ones --prune will never remove.
 */
export function applyNotes(rows: readonly AppliedSchedule[], areas: readonly string[] | undefined): string[] {
  const notes: string[] = [];
  const stale = rows.filter((r) => r.action === 'stale').map((r) => r.id);
  if (stale.length > 0) {
    const areaArgs = areas?.length ? ` --area ${areas.join(' ')}` : '';
    notes.push(
      `${plural(stale.length, 'schedule')} of this dbops no longer asked for by the configuration ` +
        `kept (dry run): ${stale.join(', ')}. "dbops schedules apply --prune${areaArgs}" removes them ` +
        '(runs already started go on, backups stay).',
    );
  }
  for (const r of rows.filter((row) => row.unmarked)) {
    notes.push(
      `${r.id} carries no dbops mark (memo ${AREA_MEMO_KEY}; created by hand or by an older dbops): ` +
        'it was updated, but --prune will never remove it; to hand it to dbops, delete it ' +
        `("temporal schedule delete --schedule-id ${r.id}") and run "dbops schedules apply" again.`,
    );
  }
  return notes;
}

function stateText(r: ScheduleState): string {
  if (r.missing) return 'not applied';
  if (r.stale) return 'stale (apply --prune removes it)';
  return r.paused ? 'paused' : 'active';
}

export function registerSchedulesCommand(program: Command): void {
  const schedules = program
    .command('schedules')
    .description('Temporal Schedules of dbops (daily backups, maintenance)');
  schedules
    .command('apply')
    .description(
      'create or update every dbops schedule from the configuration (idempotent); report the dbops ' +
        'schedules it no longer asks for, remove them with --prune',
    )
    .option('--area <areas...>', `only these areas (${scheduleRegistry.map((a) => a.area).join(', ')})`)
    .option('--prune', 'remove the dbops schedules the configuration no longer asks for (else only reported)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean; area?: string[]; prune?: boolean }) => {
      const config = getConfig();
      const result = await withClient(config, (client) =>
        applySchedules(client, config, opts.area, { prune: opts.prune }),
      );
      if (opts.json) printJson(result);
      else
        printTable(
          ['schedule', 'area', 'action'],
          result.map((r) => [r.id, r.area, ACTION_TEXT[r.action]]),
        );
      // On stderr, also with --json: a CI job's log shows it and stdout stays one JSON document.
      for (const note of applyNotes(result, opts.area)) process.stderr.write(`dbops: ${note}\n`);
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
          rows.map((r) => [r.id, r.area, stateText(r), r.nextRun, r.lastRun]),
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
