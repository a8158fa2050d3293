import type { Command } from 'commander';
import { withMilvus } from '../../../../activities/milvus/client';
import { DEFAULT_COLLECTION_NAMES, type CollectionKind } from '../../../../activities/milvus/collections';
import { fixConsistency, type ConsistencyReport } from '../../../../activities/milvus/consistency';
import { withPg } from '../../../../activities/postgres/connection';
import { failure, FailureType } from '../../../../common/failures';
import { getConfig } from '../../../config';
import { printJson } from '../../output';
import { activities, collectionName } from './shared';

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

function printConsistency(r: ConsistencyReport): void {
  process.stdout.write(
    `${r.collection} ↔ ${r.table}: ${r.postgresIds} ids in PostgreSQL, ${r.milvusIds} in Milvus; ` +
      `${r.missing.count} missing from Milvus, ${r.orphaned.count} orphaned in Milvus\n`,
  );
  if (r.missing.count) process.stdout.write(`  missing (sample): ${r.missing.sample.join(', ')}\n`);
  if (r.orphaned.count) process.stdout.write(`  orphaned (sample): ${r.orphaned.sample.join(', ')}\n`);
}

export function registerCheck(milvus: Command): void {
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
