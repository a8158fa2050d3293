import type { Command } from 'commander';
import { withPg } from '../../../activities/postgres/connection';
import { type PartitionStatus, partitionStatus } from '../../../activities/postgres/partitions';
import type { PartitionMaintenanceResult } from '../../../workflows/partition-maintenance';
import { withClient, workflowUrl } from '../../client/connection';
import {
  maintenanceInput,
  partitionMaintenanceResult,
  startPartitionMaintenance,
} from '../../client/partitions';
import { getConfig } from '../../config';
import { databaseOption } from '../options';
import { humanBytes, plural, printJson, printTable } from '../output';

export function printMaintenanceResult(r: PartitionMaintenanceResult): void {
  process.stdout.write(`${r.summary}\n`);
  const rows: (string | number)[][] = [
    ...r.drained.moved.map((m) => [
      'move DEFAULT rows',
      m.partition,
      `${plural(m.rows, 'row')} in ${plural(m.batches, 'batch', 'batches')}`,
    ]),
    ...r.created.map((name) => ['premake', name, 'created']),
    ...r.retention.decisions.map((d) => [
      `retention (${d.action})`,
      d.partition,
      `${d.done ? 'done' : d.action === 'refuse' ? 'REFUSED' : 'planned'}: ${d.reason}`,
    ]),
  ];
  if (rows.length) printTable(['step', 'partition', 'result'], rows);
}

function printStatus(s: PartitionStatus): void {
  printTable(
    ['partition', 'bounds', 'rows (estimate)', 'size'],
    s.partitions.map((p) => [
      p.name,
      p.bound.replace(/^FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)$/, '$1 .. $2'),
      p.isDefault ? `${s.defaultRows} (exact)` : (p.rowEstimate ?? 'not analyzed'),
      humanBytes(p.bytes),
    ]),
  );
  if (s.defaultRows > 0) {
    process.stdout.write(
      `DEFAULT holds ${plural(s.defaultRows, 'row')} in ${s.defaultMonths.map((m) => `${m.month} (${m.rows})`).join(', ')}: ` +
        `run "dbops partitions maintain --database ${s.database}" to move ${s.defaultRows === 1 ? 'it into its own partition' : 'them into their own partitions'}\n`,
    );
  } else {
    process.stdout.write('DEFAULT is empty\n');
  }
}

export function registerPartitionsCommand(program: Command): void {
  const partitions = program
    .command('partitions')
    .description('monthly partitions of user_behaviors: status and maintenance');

  partitions
    .command('status')
    .description('partitions with row estimates, sizes, and the rows sitting in DEFAULT')
    .option('--database <name>', 'database (default PGDATABASE)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { database?: string; json?: boolean }) => {
      const config = getConfig();
      const database = databaseOption(config, opts.database);
      const status = await withPg(config.pg, database, (c) => partitionStatus(c, database));
      if (opts.json) printJson(status);
      else printStatus(status);
    });

  partitions
    .command('maintain')
    .description('run the partition maintenance workflow now: drain DEFAULT, premake months, apply retention')
    .option('--database <name>', 'database (default PGDATABASE)')
    .option('--wait', 'wait for the result and print it')
    .option('--json', 'with --wait: print the result as JSON')
    .action(async (opts: { database?: string; wait?: boolean; json?: boolean }) => {
      const config = getConfig();
      const database = databaseOption(config, opts.database);
      await withClient(config, async (client) => {
        const started = await startPartitionMaintenance(client, config, maintenanceInput(config, database));
        process.stderr.write(
          `${started.alreadyStarted ? 'already running today, attached to' : 'started'} ${started.workflowId}\n` +
            `  ${workflowUrl(config, started.workflowId, started.runId)}\n`,
        );
        if (!opts.wait) return;
        const result = await partitionMaintenanceResult(client, started);
        if (opts.json) printJson(result);
        else printMaintenanceResult(result);
      });
    });
}
