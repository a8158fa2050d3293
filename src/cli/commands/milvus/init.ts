import type { Command } from 'commander';
import { DEFAULT_COLLECTION_NAMES } from '../../../../activities/milvus/collections';
import { getConfig } from '../../../config';
import { printJson, printTable } from '../../output';
import { activities, collectionName } from './shared';
import { printStats } from './stats';

export function registerInit(milvus: Command): void {
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
}
