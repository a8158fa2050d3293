import type { Command } from 'commander';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { createMilvusActivities } from '../../../activities/milvus';
import { withMilvus } from '../../../activities/milvus/client';
import {
  DEFAULT_COLLECTION_NAMES,
  isValidCollectionName,
  type CollectionKind,
} from '../../../activities/milvus/collections';
import { fixConsistency, type ConsistencyReport } from '../../../activities/milvus/consistency';
import type { CollectionStats } from '../../../activities/milvus/stats';
import { withPg } from '../../../activities/postgres/connection';
import { failure, FailureType } from '../../../common/failures';
import { milvusMaintenanceWorkflowId } from '../../../common/ids';
import { milvusMaintenanceProgressQuery } from '../../../workflows/milvus-messages';
import type { MilvusMaintenanceInput, MilvusMaintenanceResult } from '../../../workflows/milvus-maintenance';
import { getConfig, type Config } from '../../config';
import { withClient, workflowUrl } from '../../temporal';
import { printJson, printTable } from '../output';

function collectionName(name: string): string {
  if (!isValidCollectionName(name)) {
    throw failure(
      FailureType.InvalidInput,
      `"${name}" is not a Milvus collection name: use letters, digits and _ (starting with a letter or _)`,
    );
  }
  return name;
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

const defaultCollections = () => [DEFAULT_COLLECTION_NAMES.items, DEFAULT_COLLECTION_NAMES.users];

function activities(config: Config) {
  return createMilvusActivities({ milvus: config.milvus, pg: config.pg });
}

function indexText(s: CollectionStats): string {
  if (!s.index) return 'none';
  const params = Object.entries(s.index.params)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return `${s.index.indexType} ${s.index.metric} ${params}`;
}

export function printStats(stats: readonly CollectionStats[]): void {
  printTable(
    ['collection', 'entities', 'persisted rows', 'segments', 'index', 'built', 'load state'],
    stats.map((s) => [
      s.name,
      s.exists ? (s.liveEntities ?? 'not loaded') : 'missing',
      s.rowCount,
      s.persistentSegments.count,
      indexText(s),
      s.index ? `${s.index.indexedRows}/${s.index.totalRows} ${s.index.state}` : '',
      s.loadState,
    ]),
  );
}

/** Starts today's maintenance of `collection`; an identical start the same UTC day attaches to it. */
export async function startMilvusMaintenance(
  client: Client,
  config: Config,
  input: MilvusMaintenanceInput,
  now = new Date(),
): Promise<{ workflowId: string; runId: string | undefined; alreadyRan: boolean }> {
  const workflowId = milvusMaintenanceWorkflowId(input.collection, now);
  try {
    const handle = await client.workflow.start('milvusMaintenanceWorkflow', {
      taskQueue: config.temporal.taskQueue,
      workflowId,
      args: [input],
      // A failed run may be retried the same day; a running one is joined; a completed one stands.
      workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    return { workflowId, runId: handle.firstExecutionRunId, alreadyRan: false };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError)
      return { workflowId, runId: undefined, alreadyRan: true };
    throw err;
  }
}

function printConsistency(r: ConsistencyReport): void {
  process.stdout.write(
    `${r.collection} ↔ ${r.table}: ${r.postgresIds} ids in PostgreSQL, ${r.milvusIds} in Milvus; ` +
      `${r.missing.count} missing from Milvus, ${r.orphaned.count} orphaned in Milvus\n`,
  );
  if (r.missing.count) process.stdout.write(`  missing (sample): ${r.missing.sample.join(', ')}\n`);
  if (r.orphaned.count) process.stdout.write(`  orphaned (sample): ${r.orphaned.sample.join(', ')}\n`);
}

export function registerMilvusCommand(program: Command): void {
  const milvus = program
    .command('milvus')
    .description('Milvus collections, indexes, maintenance and consistency');

  milvus
    .command('init')
    .description(
      'create missing collections and vector indexes, load them, print stats (idempotent, never drops)',
    )
    .option('--items-collection <name>', 'item embeddings collection', DEFAULT_COLLECTION_NAMES.items)
    .option('--users-collection <name>', 'user embeddings collection', DEFAULT_COLLECTION_NAMES.users)
    .option('--json', 'machine-readable output')
    .action(async (opts: { itemsCollection: string; usersCollection: string; json?: boolean }) => {
      const config = getConfig();
      const names = {
        items: collectionName(opts.itemsCollection),
        users: collectionName(opts.usersCollection),
      };
      const acts = activities(config);
      const results = await acts.milvusInit({ names });
      const stats = await acts.milvusStats({ collections: [names.items, names.users] });
      const drifted = results.filter((r) => r.collectionAction === 'drifted');
      if (opts.json) printJson({ results, stats });
      else {
        printTable(
          ['collection', 'collection', 'index', 'load', 'notes'],
          results.map((r) => [
            r.collection,
            r.collectionAction,
            r.indexAction,
            r.loadAction,
            [
              ...r.differences.map(
                (d) => `${d.field}: ${d.property} expected ${d.expected}, found ${d.actual}`,
              ),
              ...r.indexNotes,
            ].join('\n'),
          ]),
        );
        printStats(stats);
        for (const d of drifted) {
          process.stderr.write(
            `dbops: ${d.collection} differs from its spec (left alone, nothing dropped): migrate it by hand or use another name\n`,
          );
        }
      }
      if (drifted.length) process.exitCode = 1;
    });

  milvus
    .command('stats')
    .description('entities, segments, index type/params/build progress and load state per collection')
    .option('--collection <name...>', 'collections (default: item_embeddings user_embeddings)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { collection?: string[]; json?: boolean }) => {
      const collections = (opts.collection ?? defaultCollections()).map(collectionName);
      const stats = await activities(getConfig()).milvusStats({ collections });
      if (opts.json) printJson(stats);
      else printStats(stats);
    });

  milvus
    .command('advise')
    .description('recommend index type and parameters from the collection size; --rebuild applies them')
    .option('--collection <name...>', 'collections (default: item_embeddings user_embeddings)')
    .option('--rebuild', 'release, drop and recreate the index with the advised parameters, then reload')
    .option('--json', 'machine-readable output')
    .action(async (opts: { collection?: string[]; rebuild?: boolean; json?: boolean }) => {
      const acts = activities(getConfig());
      const out = [];
      for (const collection of (opts.collection ?? defaultCollections()).map(collectionName)) {
        const report = await acts.milvusAdvise({ collection });
        const rebuilt =
          opts.rebuild && report.drift.length ? await acts.milvusRebuildIndex({ collection }) : undefined;
        out.push({ ...report, rebuilt: rebuilt ?? null });
        if (opts.json) continue;
        const fmt = (p: Readonly<Record<string, number>>) =>
          Object.entries(p)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ');
        process.stdout.write(
          `${collection}: ${report.size.rows} rows in ${report.size.segments} segment(s)\n` +
            `  current: ${report.current ? `${report.current.indexType} ${report.current.metric} ${fmt(report.current.params)}` : 'no index'}\n` +
            `  advised: ${report.advice.index.indexType} ${report.advice.index.metric} ${fmt(report.advice.index.params)}; search ${fmt(report.advice.search)}\n` +
            report.advice.reasons.map((r) => `    because ${r}\n`).join('') +
            (report.drift.length
              ? `  differs: ${report.drift.join('; ')}\n`
              : '  index matches the advice\n') +
            (rebuilt
              ? `  rebuilt: now ${rebuilt.current?.indexType} ${fmt(rebuilt.current?.params ?? {})}\n`
              : '') +
            (report.drift.length && !opts.rebuild
              ? '  run with --rebuild to apply (the collection is unavailable for search meanwhile)\n'
              : ''),
        );
      }
      if (opts.json) printJson(out);
    });

  milvus
    .command('maintain')
    .description(
      'start the maintenance workflow (flush → compact → wait → stats → optional rebuild) for a collection',
    )
    .option('--collection <name>', 'collection', DEFAULT_COLLECTION_NAMES.items)
    .option('--wait', 'wait for the result, showing progress')
    .option('--rebuild-index', 'rebuild the vector index if the advisor says it drifted')
    .option('--deadline-minutes <n>', 'give up waiting for the compaction after n minutes', '30')
    .action(
      async (opts: {
        collection: string;
        wait?: boolean;
        rebuildIndex?: boolean;
        deadlineMinutes: string;
      }) => {
        const config = getConfig();
        const deadlineMinutes = Number(opts.deadlineMinutes);
        if (!Number.isFinite(deadlineMinutes) || deadlineMinutes <= 0) {
          throw failure(
            FailureType.InvalidInput,
            `--deadline-minutes ${opts.deadlineMinutes}: must be a positive number`,
          );
        }
        const input: MilvusMaintenanceInput = {
          collection: collectionName(opts.collection),
          deadlineMinutes,
          rebuildIndexOnDrift: Boolean(opts.rebuildIndex),
        };
        await withClient(config, async (client) => {
          const started = await startMilvusMaintenance(client, config, input);
          process.stdout.write(
            started.alreadyRan
              ? `maintenance of ${input.collection} already completed today: ${workflowUrl(config, started.workflowId)}\n`
              : `started ${started.workflowId}: ${workflowUrl(config, started.workflowId, started.runId)}\n`,
          );
          if (!opts.wait) return;
          const handle = client.workflow.getHandle<
            (i: MilvusMaintenanceInput) => Promise<MilvusMaintenanceResult>
          >(started.workflowId);
          const result = handle.result();
          let done = false;
          void result.finally(() => (done = true)).catch(() => undefined);
          let last = '';
          while (!done) {
            const p = await handle.query(milvusMaintenanceProgressQuery).catch(() => undefined);
            const line = p
              ? `${p.phase}${p.round ? ` round ${p.round}` : ''}` +
                `${p.compactionId ? ` compaction ${p.compactionId} polls ${p.compactionPolls}` : ''}` +
                `${p.pendingDeletedRows ? ` (${p.pendingDeletedRows} deleted rows pending purge)` : ''}`
              : '';
            if (line && line !== last) process.stderr.write(`  ${line}\n`);
            last = line;
            await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
          }
          const r = await result;
          process.stdout.write(`${r.summary}\n`);
        });
      },
    );

  milvus
    .command('check')
    .description(
      'compare ids with embeddings in PostgreSQL with the ids in Milvus; --fix upserts missing, deletes orphans',
    )
    .option('--collection <name>', 'collection', DEFAULT_COLLECTION_NAMES.items)
    .option('--kind <items|users>', 'what the collection holds (inferred for the default names)')
    .option('--database <name>', 'PostgreSQL database with the embedding tables (default PGDATABASE)')
    .option('--fix', 'upsert missing vectors from PostgreSQL and delete orphans, in batches')
    .option('--batch-size <n>', 'rows per batch for --fix', '500')
    .option('--json', 'machine-readable output')
    .action(
      async (opts: {
        collection: string;
        kind?: string;
        database?: string;
        fix?: boolean;
        batchSize: string;
        json?: boolean;
      }) => {
        const config = getConfig();
        const collection = collectionName(opts.collection);
        const target = {
          kind: kindOf(collection, opts.kind),
          collection,
          database: opts.database ?? config.pg.database,
        };
        const batchSize = Number(opts.batchSize);
        if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
          throw failure(
            FailureType.InvalidInput,
            `--batch-size ${opts.batchSize}: must be an integer 1..10000`,
          );
        }
        if (!opts.fix) {
          const report = await activities(config).milvusCheckConsistency(target);
          if (opts.json) printJson(report);
          else printConsistency(report);
          if (report.missing.count || report.orphaned.count) process.exitCode = 1;
          return;
        }
        const result = await withMilvus(config.milvus, (client) =>
          withPg(config.pg, target.database, (pg) =>
            fixConsistency(
              client,
              pg,
              target,
              (p) => {
                if (!opts.json) process.stderr.write(`  ${p.phase} ${p.done}/${p.total}\n`);
              },
              batchSize,
            ),
          ),
        );
        if (opts.json) printJson(result);
        else {
          printConsistency(result.before);
          process.stdout.write(`fixed: upserted ${result.upserted}, deleted ${result.deleted}; now:\n`);
          printConsistency(result.after);
        }
        if (result.after.missing.count || result.after.orphaned.count) process.exitCode = 1;
      },
    );
}
