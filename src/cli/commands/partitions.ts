import type { Command } from 'commander';
import { type Client, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { withPg } from '../../../activities/postgres/connection';
import { type PartitionStatus, partitionStatus } from '../../../activities/postgres/partitions';
import { isValidDatabaseName } from '../../../common/backup';
import { FailureType, failure } from '../../../common/failures';
import { partitionMaintenanceWorkflowId } from '../../../common/ids';
import type {
  PartitionMaintenanceInput,
  PartitionMaintenanceResult,
} from '../../../workflows/partition-maintenance';
import { type Config, getConfig } from '../../config';
import { withClient, workflowUrl } from '../../temporal';
import { humanBytes, plural, printJson, printTable } from '../output';

export function databaseOption(config: Config, database: string | undefined): string {
  const name = database ?? config.pg.database;
  if (!isValidDatabaseName(name)) {
    throw failure(
      FailureType.InvalidInput,
      `--database ${JSON.stringify(name)} is not a valid database name: use letters, digits, _ $ - (at most 63 characters, not starting with a digit)`,
    );
  }
  return name;
}

export function maintenanceInput(config: Config, database: string): PartitionMaintenanceInput {
  return {
    database,
    premakeMonths: config.partitions.premakeMonths,
    retentionMonths: config.partitions.retentionMonths,
    retentionMode: config.partitions.retentionMode,
    uiUrl: config.temporal.uiUrl,
  };
}

/** Starts today's maintenance of `database`; a second start the same UTC day attaches to the first run. */
export async function startPartitionMaintenance(
  client: Client,
  config: Config,
  input: PartitionMaintenanceInput,
  now = new Date(),
): Promise<{ workflowId: string; runId: string | undefined; alreadyStarted: boolean }> {
  const workflowId = partitionMaintenanceWorkflowId(input.database, now);
  try {
    const handle = await client.workflow.start('partitionMaintenanceWorkflow', {
      taskQueue: config.temporal.taskQueue,
      workflowId,
      args: [input],
    });
    return { workflowId, runId: handle.firstExecutionRunId, alreadyStarted: false };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      return { workflowId, runId: undefined, alreadyStarted: true };
    }
    throw err;
  }
}

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
        const result = (await client.workflow
          .getHandle(started.workflowId, started.runId)
          .result()) as PartitionMaintenanceResult;
        if (opts.json) printJson(result);
        else printMaintenanceResult(result);
      });
    });
}
