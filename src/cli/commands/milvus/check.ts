import type { Command } from 'commander';
import { DEFAULT_COLLECTION_NAMES, type CollectionKind } from '../../../../activities/milvus/collections';
import type { ConsistencyReport } from '../../../../activities/milvus/consistency';
import { failure, FailureType } from '../../../../common/failures';
import {
  confirmDeleteProblem,
  DEFAULT_MAX_DELETE_SHARE,
  deleteDecision,
  maxDeleteShareProblem,
  percent,
} from '../../../../common/milvus-repair';
import { assertDatabaseName, InputError } from '../../../../common/names';
import { numberOption } from '../../options';
import type { MilvusRepairInput, MilvusRepairResult } from '../../../../workflows/milvus-repair';
import { withClient, workflowUrl } from '../../../client/connection';
import { startMilvusRepair } from '../../../client/milvus';
import { getConfig, type Config } from '../../../config';
import { printJson } from '../../output';
import { activities, collectionName } from './shared';

interface CheckOptions {
  collection: string;
  kind?: string;
  database?: string;
  fix?: boolean;
  maxDeleteShare: string;
  confirmDelete?: string;
  batchSize: string;
  json?: boolean;
}

function kindOf(collection: string, kind: string | undefined): CollectionKind {
  if (kind === 'items' || kind === 'users') return kind;
  if (kind !== undefined) throw failure(FailureType.InvalidInput, `--kind ${kind}: must be items or users`);
  if (collection === DEFAULT_COLLECTION_NAMES.items) return 'items';
  if (collection === DEFAULT_COLLECTION_NAMES.users) return 'users';
  throw failure(
    FailureType.InvalidInput,
    `cannot tell whether ${collection} holds items or users: pass --kind items|users`,
  );
}

/** Everything the options say, checked before anything connects. */
function parseOptions(opts: CheckOptions, config: Config): MilvusRepairInput {
  const collection = collectionName(opts.collection);
  const database = opts.database ?? config.pg.database;
  try {
    assertDatabaseName(database, '--database');
  } catch (err) {
    if (err instanceof InputError) throw failure(FailureType.InvalidInput, err.message);
    throw err;
  }
  if (opts.confirmDelete !== undefined && !opts.fix)
    throw failure(FailureType.InvalidInput, '--confirm-delete confirms a deletion by --fix: pass both');
  return {
    kind: kindOf(collection, opts.kind),
    collection,
    database,
    maxDeleteShare: numberOption('--max-delete-share', opts.maxDeleteShare, maxDeleteShareProblem),
    confirmDelete:
      opts.confirmDelete === undefined
        ? undefined
        : numberOption('--confirm-delete', opts.confirmDelete, confirmDeleteProblem),
    batchSize: numberOption('--batch-size', opts.batchSize, (n) =>
      Number.isInteger(n) && n >= 1 && n <= 10_000 ? undefined : 'must be an integer 1..10000',
    ),
  };
}

function printConsistency(r: ConsistencyReport): void {
  process.stdout.write(
    `${r.collection} ↔ ${r.table}: ${r.postgresIds} ids in PostgreSQL, ${r.milvusIds} in Milvus; ` +
      `${r.missing.count} missing from Milvus, ${r.orphaned.count} orphaned in Milvus\n`,
  );
  if (r.missing.count) process.stdout.write(`  missing (sample): ${r.missing.sample.join(', ')}\n`);
  if (r.orphaned.count) process.stdout.write(`  orphaned (sample): ${r.orphaned.sample.join(', ')}\n`);
}

/** The dry run: compares in this process (read-only) and says what --fix would do, by the workflow's rule. */
async function check(config: Config, input: MilvusRepairInput, json: boolean): Promise<void> {
  const report = await activities(config).milvusCheckConsistency(input);
  const decision = deleteDecision({
    collection: input.collection,
    database: input.database,
    orphans: report.orphaned.count,
    entities: report.milvusIds,
    maxDeleteShare: input.maxDeleteShare ?? DEFAULT_MAX_DELETE_SHARE,
  });
  if (json) printJson({ ...report, fix: decision });
  else {
    printConsistency(report);
    if (!decision.allowed) process.stdout.write(`--fix would be refused: ${decision.reason}\n`);
    else if (report.missing.count || report.orphaned.count)
      process.stdout.write(
        `--fix would upsert ${report.missing.count} and delete ${report.orphaned.count} ` +
          `(${percent(report.orphaned.count, report.milvusIds)} of the entities, within the cap)\n`,
      );
  }
  if (report.missing.count || report.orphaned.count) process.exitCode = 1;
}

/** --fix: starts the repair workflow, prints its Web UI link, waits for its result. */
async function repair(config: Config, input: MilvusRepairInput, json: boolean): Promise<void> {
  await withClient(config, async (client) => {
    const { handle, runId, started } = await startMilvusRepair(client, config, input);
    const url = workflowUrl(config, handle.workflowId, runId);
    if (!started)
      throw failure(
        FailureType.Refused,
        `a repair of ${input.collection} is already running: ${url} (wait for it, or cancel it there)`,
      );
    process.stderr.write(`repairing ${input.collection} from ${input.database}: ${url}\n`);
    const r: MilvusRepairResult = await handle.result();
    if (json) printJson({ workflowId: handle.workflowId, runId, url, ...r });
    else {
      printConsistency(r.before);
      process.stdout.write(`${r.summary}\n`);
      printConsistency(r.after);
    }
    if (r.after.missing.count || r.after.orphaned.count) process.exitCode = 1;
  });
}

export function registerCheck(milvus: Command): void {
  milvus
    .command('check')
    .description(
      'compare ids with embeddings in PostgreSQL with the ids in Milvus (read-only); --fix starts the ' +
        'repair workflow: upsert missing, delete orphans (at most --max-delete-share of the collection)',
    )
    .option('--collection <name>', 'collection', DEFAULT_COLLECTION_NAMES.items)
    .option('--kind <items|users>', 'what the collection holds (inferred for the default names)')
    .option('--database <name>', 'PostgreSQL database with the embedding tables (default PGDATABASE)')
    .option('--fix', 'repair as a workflow: upsert missing vectors from PostgreSQL, delete orphans')
    .option(
      '--max-delete-share <fraction>',
      'refuse a --fix that deletes more than this share of the entities',
      String(DEFAULT_MAX_DELETE_SHARE),
    )
    .option(
      '--confirm-delete <count>',
      'allow a --fix above the cap: the exact number of orphans the check found',
    )
    .option('--batch-size <n>', 'rows per batch for --fix', '500')
    .option('--json', 'machine-readable output')
    .action(async (opts: CheckOptions) => {
      const config = getConfig();
      const input = parseOptions(opts, config);
      if (opts.fix) await repair(config, input, Boolean(opts.json));
      else await check(config, input, Boolean(opts.json));
    });
}
