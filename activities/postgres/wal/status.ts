import { formatLsn, segmentOfLsn, walTimelinePrefix } from '../../../common/pitr';
import type { BackupStore } from '../../storage';
import type { PgConnectionSettings } from '../connection';
import { withPg } from '../connection';
import { readLag, serverWal, slotUnusable, walSlots } from './slots';

/** The server's side of `dbops wal status`: positions, slots and lag as PostgreSQL reports them. */
export interface WalServerStatus {
  readonly systemId: string;
  readonly timeline: number;
  readonly segmentBytes: number;
  readonly currentLsn: string;
  readonly currentSegment: string;
  readonly guardSlot: { readonly name: string; readonly problem?: string; readonly restartLsn?: string };
  readonly streamSlot: { readonly name: string; readonly problem?: string; readonly active: boolean };
  /** pg_receivewal's flushed position (null while no archiver streams). */
  readonly receivedLsn: string | null;
  readonly receivedLagBytes: number | null;
  /** pg_stat_replication.flush_lag; 0 when caught up, null while no archiver streams. */
  readonly receivedLagSeconds: number | null;
  /** The store holds everything before this (the guard slot's position). */
  readonly storedLagBytes: number | null;
}

export async function walServerStatus(pg: PgConnectionSettings, slot: string): Promise<WalServerStatus> {
  return withPg(pg, undefined, async (client) => {
    const server = await serverWal(client);
    const slots = walSlots(slot);
    const lag = await readLag(client, slots);
    const guardProblem = slotUnusable(lag.guard);
    const streamProblem = slotUnusable(lag.stream);
    const received = lag.receivedLsn;
    const stored = guardProblem ? null : lag.guard!.restartLsn!;
    return {
      systemId: server.systemId,
      timeline: server.timeline,
      segmentBytes: server.segmentBytes,
      currentLsn: formatLsn(lag.currentLsn),
      currentSegment: segmentOfLsn(lag.currentLsn, server.timeline, server.segmentBytes),
      guardSlot: {
        name: slots.guard,
        ...(guardProblem ? { problem: guardProblem } : { restartLsn: formatLsn(stored!) }),
      },
      streamSlot: {
        name: slots.stream,
        ...(streamProblem && { problem: streamProblem }),
        active: lag.stream?.activePid != null,
      },
      receivedLsn: received === null ? null : formatLsn(received),
      receivedLagBytes: received === null ? null : Math.max(0, lag.currentLsn - received),
      receivedLagSeconds:
        received === null ? null : received >= lag.currentLsn ? 0 : (lag.flushLagSeconds ?? 0),
      storedLagBytes: stored === null ? null : Math.max(0, lag.currentLsn - stored),
    };
  });
}

/**
 * The newest archived segment of `timeline`, looking first at the log ids around `near` (the
 * server's current segment): one short listing instead of the timeline's whole history.
 */
export async function lastArchivedSegment(
  store: BackupStore,
  systemId: string,
  timeline: string,
  near: string,
): Promise<string | undefined> {
  const folder = walTimelinePrefix(systemId, timeline);
  const log = parseInt(near.slice(8, 16), 16);
  const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');
  const narrowed = [log, log - 1].filter((l) => l >= 0).map((l) => `${folder}${timeline}${hex8(l)}`);
  for (const prefix of [...narrowed, folder]) {
    const sidecars = (await store.list(prefix)).filter((o) => o.key.endsWith('.zst.json'));
    const last = sidecars.at(-1);
    if (last) return last.key.slice(folder.length, folder.length + 24);
  }
  return undefined;
}
