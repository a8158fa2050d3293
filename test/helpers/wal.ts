import path from 'node:path';
import { createBackupStore } from '../../activities/storage';
import { archivedSegments, walPrefix } from '../../common/pitr';
import type { Config } from '../../src/config';

/**
 * Polls `fn` every 250 ms until it returns something other than undefined or false; an error it
 * throws fails at once (unlike restore-fixtures' waitFor, which keeps trying): the WAL tests must
 * see a broken archiver, not wait it out.
 */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The completed segments (with their sidecar) of cluster `systemId` in the config's store, sorted; never a partial. */
export async function archivedSegmentsIn(config: Config, systemId: string): Promise<string[]> {
  const store = createBackupStore(config.storage);
  try {
    return archivedSegments(
      (await store.list(`${walPrefix(systemId)}/`)).map((o) => path.basename(o.key)),
    ).sort();
  } finally {
    await store.close();
  }
}
