import type { Command } from 'commander';
import { getConfig } from '../../../config';
import { printJson } from '../../output';
import { activities, collectionName, defaultCollections, paramsText } from './shared';

export function registerAdvise(milvus: Command): void {
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
        process.stdout.write(
          `${collection}: ${report.size.rows} rows in ${report.size.segments} segment(s)\n` +
            `  current: ${report.current ? `${report.current.indexType} ${report.current.metric} ${paramsText(report.current.params)}` : 'no index'}\n` +
            `  advised: ${report.advice.index.indexType} ${report.advice.index.metric} ${paramsText(report.advice.index.params)}; search ${paramsText(report.advice.search)}\n` +
            report.advice.reasons.map((r) => `    because ${r}\n`).join('') +
            (report.drift.length
              ? `  differs: ${report.drift.join('; ')}\n`
              : '  index matches the advice\n') +
            (rebuilt
              ? `  rebuilt: now ${rebuilt.current?.indexType} ${paramsText(rebuilt.current?.params ?? {})}\n`
              : '') +
            (report.drift.length && !opts.rebuild
              ? '  run with --rebuild to apply (the collection is unavailable for search meanwhile)\n'
              : ''),
        );
      }
      if (opts.json) printJson(out);
    });
}
