import type { Command } from 'commander';
import { DEFAULT_COLLECTION_NAMES } from '../../../../activities/milvus/collections';
import { failure, FailureType } from '../../../../common/failures';
import type { MilvusMaintenanceInput } from '../../../../workflows/milvus-maintenance';
import type { MilvusMaintenanceProgress } from '../../../../workflows/milvus-messages';
import { withClient, workflowUrl } from '../../../client/connection';
import { startMilvusMaintenance, watchMilvusMaintenance } from '../../../client/milvus';
import { getConfig } from '../../../config';
import { collectionName } from './shared';

interface MaintainOptions {
  collection: string;
  wait?: boolean;
  rebuildIndex?: boolean;
  deadlineMinutes: string;
}

/** `flush round 2 compaction 7 polls 3 (12 deleted rows pending purge)`; empty without an answer. */
function progressLine(p: MilvusMaintenanceProgress | undefined): string {
  return p
    ? `${p.phase}${p.round ? ` round ${p.round}` : ''}` +
        `${p.compactionId ? ` compaction ${p.compactionId} polls ${p.compactionPolls}` : ''}` +
        `${p.pendingDeletedRows ? ` (${p.pendingDeletedRows} deleted rows pending purge)` : ''}`
    : '';
}

async function maintain(opts: MaintainOptions): Promise<void> {
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
    let last = '';
    const r = await watchMilvusMaintenance(client, started.workflowId, (p) => {
      const line = progressLine(p);
      if (line && line !== last) process.stderr.write(`  ${line}\n`);
      last = line;
    });
    process.stdout.write(`${r.summary}\n`);
  });
}

export function registerMaintain(milvus: Command): void {
  milvus
    .command('maintain')
    .description(
      'start the maintenance workflow (flush → compact → wait → stats → optional rebuild) for a collection',
    )
    .option('--collection <name>', 'collection', DEFAULT_COLLECTION_NAMES.items)
    .option('--wait', 'wait for the result, showing progress')
    .option('--rebuild-index', 'rebuild the vector index if the advisor says it drifted')
    .option('--deadline-minutes <n>', 'give up waiting for the compaction after n minutes', '30')
    .action(maintain);
}
