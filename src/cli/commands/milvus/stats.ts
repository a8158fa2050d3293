import type { Command } from 'commander';
import type { CollectionStats } from '../../../../activities/milvus/stats';
import { getConfig } from '../../../config';
import { printJson, printTable } from '../../output';
import { activities, collectionName, defaultCollections, paramsText } from './shared';

function indexText(s: CollectionStats): string {
  if (!s.index) return 'none';
  return `${s.index.indexType} ${s.index.metric} ${paramsText(s.index.params)}`;
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

export function registerStats(milvus: Command): void {
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
}
