import type { Command } from 'commander';
import {
  createBackupStore,
  listStoredDatabases,
  MirroredStore,
  repairMirror,
} from '../../../activities/storage';
import { FailureType, failure } from '../../../common/failures';
import { getConfig } from '../../config';
import { databaseName } from '../options';
import { plural } from '../output';

/**
 * `dbops backups repair-copies`: DBOPS_BACKUP_MIRROR=local copies back from S3 what a local copy
 * lacks (missing or damaged files). Its own command, not part of prune: prune also runs inside the
 * backup workflow's short activity, which must not copy whole archives.
 */
export function registerRepairCopies(backups: Command): void {
  backups
    .command('repair-copies')
    .description('DBOPS_BACKUP_MIRROR=local: copy back from S3 every local copy that is missing or damaged')
    .option('--db <name>', 'only this database')
    .action(async (opts: { db?: string }) => {
      const config = getConfig();
      const only = opts.db === undefined ? undefined : databaseName('--db', opts.db);
      const store = createBackupStore(config.storage);
      try {
        if (!(store instanceof MirroredStore))
          throw failure(
            FailureType.InvalidInput,
            'there is no local copy to repair: DBOPS_BACKUP_MIRROR=local (with DBOPS_S3_BUCKET) keeps one',
          );
        let copied = 0;
        for (const d of only ? [only] : await listStoredDatabases(store)) {
          for (const key of await repairMirror(store, d)) {
            process.stdout.write(`copied ${store.describe(key)} -> ${store.mirror.describe(key)}\n`);
            copied++;
          }
        }
        process.stdout.write(`${plural(copied, 'file')} copied back; every local copy is whole\n`);
      } finally {
        await store.close();
      }
    });
}
