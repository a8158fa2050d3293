/**
 * Watches a backup store while a drill runs: polls `latest.json` and the listing of one database
 * and records what a reader would have seen. A stored object never changes once listed, so a key
 * seen with two sizes, or seen and then gone, was a partial object; a `latest` whose backup had no
 * manifest in the listing taken right after reading it moved too early.
 */
import { latestKey, MANIFEST_FILE, type LatestPointer } from '../../../common/backup';
import type { BackupStore } from '../../../activities/storage';

export interface StoreWatch {
  /** Stops polling; resolves with what was seen. */
  stop(): Promise<WatchReport>;
}

export interface WatchReport {
  readonly polls: number;
  /** Every key listed, with each size it was listed with. */
  readonly sizes: ReadonlyMap<string, ReadonlySet<number>>;
  /** Each `latest` id seen, in order (consecutive repeats collapsed). */
  readonly latest: readonly (string | undefined)[];
  /** What a reader must never see. */
  readonly violations: readonly string[];
}

export function watchStore(store: BackupStore, database: string, everyMs = 100): StoreWatch {
  const sizes = new Map<string, Set<number>>();
  const latest: (string | undefined)[] = [];
  const violations: string[] = [];
  let polls = 0;
  let stopped = false;
  const poll = async () => {
    // latest first, then the listing: a manifest written before latest moved must be listed.
    const pointer = await store.getJson<LatestPointer>(latestKey(database));
    const objects = await store.list(`${database}/`);
    polls++;
    if (latest[latest.length - 1] !== pointer?.id || latest.length === 0) latest.push(pointer?.id);
    const keys = new Set(objects.map((o) => o.key));
    if (pointer && !keys.has(`${database}/${pointer.id}/${MANIFEST_FILE}`))
      violations.push(`latest named ${pointer.id} while it had no manifest`);
    for (const o of objects) {
      const seen = sizes.get(o.key) ?? new Set<number>();
      seen.add(o.size);
      sizes.set(o.key, seen);
      if (seen.size > 1 && !o.key.endsWith('.json'))
        violations.push(`${o.key} listed with sizes ${[...seen].join(', ')}`);
    }
    for (const key of sizes.keys())
      if (!keys.has(key) && !key.endsWith('.json')) violations.push(`${key} listed, then gone`);
  };
  const loop = (async () => {
    while (!stopped) {
      await poll().catch((err: Error) => violations.push(`poll failed: ${err.message}`));
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      await poll();
      return { polls, sizes, latest, violations: [...new Set(violations)] };
    },
  };
}
