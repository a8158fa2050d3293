import { createBackupStore, listBackupEntries } from '../../activities/storage';
import type { Config } from '../config';
import type { BackupAgeSource, VerifiedBackup } from './metrics';

const CACHE_MS = 60_000;

/**
 * The age gauge's source of truth: the backup store itself, so the alert on "age of the newest
 * verified backup" also fires when backups stop being taken or verified, whatever the worker
 * remembers. Listing the store costs a few requests, so the answer is cached for a minute.
 */
export function storeBackupAgeSource(config: Config): BackupAgeSource {
  let cached: { at: number; value: readonly VerifiedBackup[] } | undefined;
  return async () => {
    if (cached && Date.now() - cached.at < CACHE_MS) return cached.value;
    const store = createBackupStore(config.storage);
    try {
      const value: VerifiedBackup[] = [];
      for (const database of config.databases) {
        const verified = (await listBackupEntries(store, database)).filter(
          (e) => e.complete && e.verification?.status === 'passed',
        );
        const newest = verified.at(-1);
        if (newest) value.push({ database, takenAt: new Date(newest.manifest?.startedAt ?? newest.time) });
      }
      cached = { at: Date.now(), value };
      return value;
    } finally {
      await store.close();
    }
  };
}
