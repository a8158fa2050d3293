import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Client } from 'pg';
import {
  formatLsn,
  parseWalSegment,
  segmentOfLsn,
  walPrefix,
  walSegmentSidecarKey,
} from '../../../common/pitr';
import type { BackupStore } from '../../storage';
import { readSpool } from './spool';
import {
  createGuardSlot,
  dropSlot,
  readSlots,
  releaseSlot,
  resetStreamSlot,
  slotUnusable,
  type ServerWal,
  type WalSlots,
} from './slots';
import type { WalEvent } from './types';

/**
 * Before streaming: the guard slot exists and holds WAL (created on the first run; recreated, and
 * reported as `slot-lost`, when it went missing or lost after WAL was archived), the spool holds
 * nothing the store already has, and the stream slot starts where the spool ends, or where the
 * guard is when the spool is empty. A pg_receivewal still holding the stream slot (left by a
 * killed worker) is ended.
 */
export async function prepareSlots(o: {
  readonly client: Client;
  readonly store: BackupStore;
  readonly server: ServerWal;
  readonly slots: WalSlots;
  readonly spool: string;
}): Promise<WalEvent | undefined> {
  const { client, slots, server } = o;
  const before = await readSlots(client, slots);
  const problem = slotUnusable(before.get(slots.guard));
  let event: WalEvent | undefined;
  if (problem) {
    const archivedBefore = (await o.store.list(`${walPrefix(server.systemId)}/`)).length > 0;
    if (before.has(slots.guard)) await dropSlot(client, slots.guard);
    await createGuardSlot(client, slots);
    if (archivedBefore) {
      const guard = (await readSlots(client, slots)).get(slots.guard)!;
      const from = segmentOfLsn(guard.restartLsn!, server.timeline, server.segmentBytes);
      event = {
        kind: 'slot-lost',
        message: `replication slot ${slots.guard} was ${problem}: WAL the store did not hold yet may be gone; archiving starts again at ${formatLsn(guard.restartLsn!)} (segment ${from}); run "dbops wal check" for the gap and take a new base backup`,
      };
    }
  }
  const guardLsn = (await readSlots(client, slots)).get(slots.guard)!.restartLsn!;
  const keepFrom = Math.floor(guardLsn / server.segmentBytes);
  await pruneStored(o, keepFrom);
  const spool = await readSpool(o.spool, server.segmentBytes);
  const stream = before.get(slots.stream);
  if (event || spool.walFiles.length === 0 || slotUnusable(stream)) await resetStreamSlot(client, slots);
  else await releaseSlot(client, slots.stream);
  return event;
}

/**
 * Removes spool files before segment `keepFrom`: partial ones (the guard is past them, so the
 * server may no longer have what follows) and completed ones the store holds. A completed segment
 * the store lacks stays: the run stores it first.
 */
async function pruneStored(
  o: { readonly store: BackupStore; readonly server: ServerWal; readonly spool: string },
  keepFrom: number,
): Promise<void> {
  const { segmentBytes, systemId } = o.server;
  const spool = await readSpool(o.spool, segmentBytes);
  const completed = new Set(spool.segments);
  for (const segment of spool.walFiles) {
    if (parseWalSegment(segment, segmentBytes).segno >= keepFrom) continue;
    if (completed.has(segment) && !(await o.store.head(walSegmentSidecarKey(systemId, segment)))) continue;
    await rm(path.join(o.spool, completed.has(segment) ? segment : `${segment}.partial`), { force: true });
  }
}
