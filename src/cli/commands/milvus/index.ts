import type { Command } from 'commander';
import { registerAdvise } from './advise';
import { registerCheck } from './check';
import { registerInit } from './init';
import { registerMaintain } from './maintain';
import { registerStats } from './stats';

/** `dbops milvus`: one file per subcommand; the maintenance workflow is started through src/client/milvus.ts. */
export function registerMilvusCommand(program: Command): void {
  const milvus = program
    .command('milvus')
    .description('Milvus collections, indexes, maintenance and consistency');
  registerInit(milvus);
  registerStats(milvus);
  registerAdvise(milvus);
  registerMaintain(milvus);
  registerCheck(milvus);
}
