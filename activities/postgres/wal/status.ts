import {
  archivedSegments,
  formatLsn,
  parseLsn,
  parseWalSegment,
  segmentOfLsn,
  walPartialSidecarKey,
  walSegmentName,
  walTimelinePrefix,
  type WalPartialSidecar,
} from '../../../common/pitr';
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
  /**
   * The store holds everything before this: the guard slot's position (completed segments), or the
   * end of the newest partial upload when `store` was given and it is further.
   */
  readonly storedLsn: string | null;
  readonly storedLagBytes: number | null;
  /** The segment being received as the store last got it (`<segment>.partial.zst`), when given a store. */
  readonly partial?: { readonly segment: string; readonly receivedLsn: string; readonly archivedAt: string };
}

/** The server's positions and slots; with `store`, the stored position counts the newest partial upload. */
export async function walServerStatus(
  pg: PgConnectionSettings,
  slot: string,
  store?: BackupStore,
): Promise<WalServerStatus> {
  return withPg(pg, undefined, async (client) => {
    const server = await serverWal(client);
    const slots = walSlots(slot);
    const lag = await readLag(client, slots);
    const guardProblem = slotUnusable(lag.guard);
    const streamProblem = slotUnusable(lag.stream);
    const received = lag.receivedLsn;
    const guard = guardProblem ? null : lag.guard!.restartLsn!;
    const current = segmentOfLsn(lag.currentLsn, server.timeline, server.segmentBytes);
    const partial = store && (await newestPartial(store, server.systemId, current, server.segmentBytes));
    const partialLsn = partial ? parseLsn(partial.receivedLsn) : null;
    const stored = guard === null ? partialLsn : Math.max(guard, partialLsn ?? 0);
    return {
      systemId: server.systemId,
      timeline: server.timeline,
      segmentBytes: server.segmentBytes,
      currentLsn: formatLsn(lag.currentLsn),
      currentSegment: current,
      guardSlot: {
        name: slots.guard,
        ...(guardProblem ? { problem: guardProblem } : { restartLsn: formatLsn(guard!) }),
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
      storedLsn: stored === null ? null : formatLsn(stored),
      storedLagBytes: stored === null ? null : Math.max(0, lag.currentLsn - stored),
      ...(partial && {
        partial: {
          segment: partial.segment,
          receivedLsn: partial.receivedLsn,
          archivedAt: partial.archivedAt,
        },
      }),
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
    const last = archivedSegments((await store.list(prefix)).map((o) => o.key.slice(folder.length))).at(-1);
    if (last) return last;
  }
  return undefined;
}

/**
 * The partial upload of the segment being received: the server's current segment's, or the one
 * before (the archiver is a segment behind right after a switch). Two reads, no listing.
 */
async function newestPartial(
  store: BackupStore,
  systemId: string,
  current: string,
  segmentBytes: number,
): Promise<WalPartialSidecar | undefined> {
  const { timeline, segno } = parseWalSegment(current, segmentBytes);
  for (const n of [segno, segno - 1].filter((x) => x >= 0)) {
    const sidecar = await store.getJson<WalPartialSidecar>(
      walPartialSidecarKey(systemId, walSegmentName(timeline, n, segmentBytes)),
    );
    if (sidecar) return sidecar;
  }
  return undefined;
}
