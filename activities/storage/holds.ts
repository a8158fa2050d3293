import { setTimeout as sleep } from 'node:timers/promises';
import {
  type BackupEntry,
  type BackupHold,
  type BackupManifest,
  activeHolds,
  holdKey,
  holdsKey,
  manifestKey,
  parseBackupId,
} from '../../common/backup';
import { FailureType, failure } from '../../common/failures';
import type { BackupStore } from './types';

/**
 * Holds: a restore waiting for approval (and a verification) keeps its backup from retention.
 * The store has no locks or conditional writes everywhere dbops runs (a local folder, S3 and its
 * look-alikes), so taking a hold and pruning follow a write-then-read order on both sides:
 * - the holder writes its hold, then reads the manifest: present means retention will see the hold;
 * - retention deletes a backup's manifest first (it then no longer exists for anyone), reads the
 *   holds again, and writes the manifest back if a hold appeared meanwhile.
 * Whichever order the two interleave in, either retention sees the hold and keeps the backup, or
 * the holder finds the manifest gone and fails NotFound: never a restore approved on a backup that
 * retention deleted under it.
 */

/** Every hold of `database` (expired ones too: retention removes those). Unreadable ones are skipped. */
export async function listHolds(
  store: BackupStore,
  database: string,
  backupId?: string,
): Promise<BackupHold[]> {
  const holds: BackupHold[] = [];
  for (const o of await store.list(holdsKey(database, backupId))) {
    if (!o.key.endsWith('.json')) continue;
    const h = await store.getJson<BackupHold>(o.key).catch(() => undefined);
    if (h && typeof h.backupId === 'string' && typeof h.expiresAt === 'string') holds.push(h);
  }
  return holds;
}

/** How long the holder waits for a manifest that retention may be writing back (see above). */
const MANIFEST_REREADS = [0, 500, 1500];

/** Writes the hold, then proves the backup still exists; a pruned backup fails NotFound and leaves no hold. */
export async function takeHold(store: BackupStore, hold: BackupHold): Promise<void> {
  const { database } = parseBackupId(hold.backupId);
  const key = holdKey(database, hold.backupId, hold.holder);
  await store.putJson(key, hold);
  for (const wait of MANIFEST_REREADS) {
    if (wait) await sleep(wait);
    if (await store.head(manifestKey(database, hold.backupId))) return;
  }
  await store.delete(key);
  throw failure(
    FailureType.NotFound,
    `backup ${hold.backupId} no longer exists at ${store.describe(manifestKey(database, hold.backupId))} (retention may have deleted it); list backups with "dbops backups list"`,
  );
}

export async function releaseHold(store: BackupStore, backupId: string, holder: string): Promise<void> {
  await store.delete(holdKey(parseBackupId(backupId).database, backupId, holder));
}

/**
 * Deletes a backup folder unless a hold on it is active, in the order described above. Returns
 * the holds that kept it (empty when it was deleted).
 */
export async function deleteUnlessHeld(
  store: BackupStore,
  entry: BackupEntry,
  now: Date,
  deleteFolder: (store: BackupStore, database: string, backupId: string) => Promise<number>,
): Promise<BackupHold[]> {
  const heldNow = async () => activeHolds(await listHolds(store, entry.database, entry.id), now);
  let held = await heldNow();
  if (held.length) return held;
  const manifest: BackupManifest | undefined = entry.manifest;
  if (manifest) {
    await store.delete(manifestKey(entry.database, entry.id));
    held = await heldNow();
    if (held.length) {
      await store.putJson(manifestKey(entry.database, entry.id), manifest);
      return held;
    }
  }
  await deleteFolder(store, entry.database, entry.id);
  return [];
}

/** Removes holds that expired (their holder ended without releasing them): returns how many. */
export async function removeExpiredHolds(store: BackupStore, database: string, now: Date): Promise<number> {
  const holds = await listHolds(store, database);
  const live = new Set(activeHolds(holds, now));
  let removed = 0;
  for (const h of holds) {
    if (live.has(h)) continue;
    await store.delete(holdKey(database, h.backupId, h.holder));
    removed++;
  }
  return removed;
}

/** The store side of holds, as activities (short profile); the workflow side is workflows/backup-hold.ts. */
export function createHoldActivities(withStore: <T>(fn: (store: BackupStore) => Promise<T>) => Promise<T>) {
  return {
    /** Keeps `backupId` from retention until released or `expiresAt`; NotFound when it is already gone. */
    async holdBackup(input: {
      backupId: string;
      holder: string;
      reason: string;
      expiresAt: string;
    }): Promise<{ location: string }> {
      return withStore(async (store) => {
        const hold: BackupHold = { ...input, heldAt: new Date().toISOString() };
        await takeHold(store, hold);
        return {
          location: store.describe(
            holdKey(parseBackupId(input.backupId).database, input.backupId, input.holder),
          ),
        };
      });
    },

    /** Ends a hold; releasing one that is gone is fine. */
    async releaseBackupHold(input: { backupId: string; holder: string }): Promise<void> {
      await withStore((store) => releaseHold(store, input.backupId, input.holder));
    },
  };
}

export type HoldActivities = ReturnType<typeof createHoldActivities>;
