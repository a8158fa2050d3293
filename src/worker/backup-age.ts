import { createBackupStore, listBackupEntries } from '../../activities/storage';
import type { BackupEntry } from '../../common/backup';
import type { Config } from '../config';
import type { BackupAgeSource, FinishedBackup, KnownBackup } from './metrics';

const CACHE_MS = 60_000;

/** When a listed backup was taken: its manifest's start, else the time in its id. */
const takenAt = (e: BackupEntry) => new Date(e.manifest?.startedAt ?? e.time);

/** The newest complete backup whose manifest says when it finished, how large and how long it was. */
function newestFinished(database: string, entries: readonly BackupEntry[]): FinishedBackup | undefined {
  for (const e of [...entries].reverse()) {
    const m = e.manifest;
    if (!e.complete || !m) continue;
    const finishedAt = new Date(m.finishedAt);
    // A manifest another tool wrote may lack these: it says nothing about size or duration.
    if (Number.isNaN(finishedAt.getTime()) || !Number.isFinite(m.sizeBytes) || !Number.isFinite(m.durationMs))
      continue;
    return {
      kind: 'finished',
      database,
      takenAt: takenAt(e),
      finishedAt,
      sizeBytes: m.sizeBytes,
      durationSeconds: m.durationMs / 1000,
    };
  }
  return undefined;
}

/**
 * The backup gauges' source of truth: the backup store itself, so "age of the newest verified
 * backup" and "last successful backup" also hold after a worker restart, count backups other workers
 * took, and go stale when backups stop being taken or verified, whatever the worker remembers.
 * Listing the store costs a few requests per database, so the answer is cached for a minute, and
 * the gauges of one scrape share one listing.
 */
export function storeBackupAgeSource(config: Config): BackupAgeSource {
  let cached: { at: number; value: readonly KnownBackup[] } | undefined;
  let listing: Promise<readonly KnownBackup[]> | undefined;
  const list = async (): Promise<readonly KnownBackup[]> => {
    const store = createBackupStore(config.storage);
    try {
      const value: KnownBackup[] = [];
      for (const database of config.databases) {
        const entries = await listBackupEntries(store, database);
        const verified = entries.filter((e) => e.complete && e.verification?.status === 'passed').at(-1);
        if (verified) value.push({ kind: 'verified', database, takenAt: takenAt(verified) });
        const finished = newestFinished(database, entries);
        if (finished) value.push(finished);
      }
      cached = { at: Date.now(), value };
      return value;
    } finally {
      await store.close();
    }
  };
  return () => {
    if (cached && Date.now() - cached.at < CACHE_MS) return cached.value;
    listing ??= list().finally(() => {
      listing = undefined;
    });
    return listing;
  };
}
