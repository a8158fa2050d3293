import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { CancelledFailure, Context } from '@temporalio/activity';
import type { Client } from 'pg';
import { FailureType, failure } from '../../../common/failures';
import {
  describeGap,
  findSegmentGaps,
  formatLsn,
  isSystemIdentifier,
  parseLsn,
  segmentEndLsn,
  segmentTimeline,
} from '../../../common/pitr';
import { withBackupStore, type BackupStore } from '../../storage';
import { pgChildEnv, withPg } from '../connection';
import { resolvePgBinaries } from '../binaries';
import { withProgress } from '../progress';
import { LsnHistory, type WalLag } from './lag';
import { PartialUploader } from './partial';
import { startReceiver, type Receiver } from './receiver';
import {
  advanceGuard,
  readLag,
  serverWal,
  walSlots,
  type ServerWal,
  type WalLagRow,
  type WalSlots,
} from './slots';
import { prepareSlots } from './prepare';
import { readSpool, storeHistory, storeSegment } from './spool';
import type { WalArchiveInput, WalArchiveResult, WalDeps, WalEvent } from './types';

/** One archiving run (an activity attempt): the server, its slots, spool, store and progress. */
interface Run {
  readonly deps: WalDeps;
  readonly client: Client;
  readonly store: BackupStore;
  readonly server: ServerWal;
  readonly slots: WalSlots;
  readonly spool: string;
  readonly history: LsnHistory;
  readonly partial: PartialUploader;
  readonly progress: {
    archived: number;
    lastSegment?: string;
    lastArchivedAt?: string;
    /** The newest upload of the segment being received: its name and where its WAL ends. */
    partial?: { segment: string; receivedLsn: string; at: string };
    lag?: WalLag;
  };
}

/** Where one server's and slot's spool lives: never shared by two clusters or two archivers. */
export function spoolDir(root: string, systemId: string, slot: string): string {
  return path.join(root, systemId, slot);
}

/**
 * Archives the server's WAL until cancelled, `runForMs` passes or something needs telling (a lost
 * slot, a timeline switch, a gap): then pg_receivewal stops cleanly, the completed segments in the
 * spool are stored, and the result says why it ended. Heartbeats carry the progress and the lag.
 */
export async function archiveWal(deps: WalDeps, input: WalArchiveInput): Promise<WalArchiveResult> {
  if (!isSystemIdentifier(input.systemId))
    throw failure(FailureType.InvalidInput, `not a PostgreSQL system identifier: ${input.systemId}`);
  if (input.slot !== deps.slot)
    throw failure(
      FailureType.Misconfigured,
      `this archiver was started for replication slot ${input.slot}, this worker archives with DBOPS_WAL_SLOT=${deps.slot}: set DBOPS_WAL_SLOT alike for the CLI and the workers`,
    );
  return withPg(deps.pg, undefined, async (client) => {
    const server = await serverWal(client);
    if (server.systemId !== input.systemId)
      throw failure(
        FailureType.Misconfigured,
        `the server at ${deps.pg.host}:${deps.pg.port} is cluster ${server.systemId}, this archiver is for ${input.systemId}: start the archiver of this server (dbops wal start) or point PGHOST at the other`,
      );
    const spool = spoolDir(deps.spoolDir, server.systemId, deps.slot);
    await mkdir(spool, { recursive: true });
    return withBackupStore(deps.storage, async (store) => {
      const slots = walSlots(deps.slot);
      const run: Run = {
        deps,
        client,
        store,
        server,
        slots,
        spool,
        history: new LsnHistory(),
        partial: new PartialUploader(store, server.systemId, spool, server.segmentBytes),
        progress: { archived: 0 },
      };
      try {
        const event = await prepareSlots({ client, store, server, slots, spool });
        if (event) return { archived: 0, event };
        return await stream(run, input);
      } catch (err) {
        // A clean stop ends the series; a failure leaves them, their seconds growing (wal-metrics).
        if (err instanceof CancelledFailure) deps.onLag?.(server.systemId, undefined);
        throw err;
      }
    });
  });
}

async function stream(run: Run, input: WalArchiveInput): Promise<WalArchiveResult> {
  const ctx = Context.current();
  const bins = await resolvePgBinaries(run.deps.pg.binDir, run.server.major);
  const started = Date.now();
  const pollMs = input.pollMs ?? 500;
  return withProgress(
    { everyMs: 2_000, cancelled: 'WAL archiver stopped' },
    () => ({ ...run.progress }),
    async (kills) => {
      const receiver = startReceiver({
        binDir: bins.dir,
        env: pgChildEnv(run.deps.pg),
        spool: run.spool,
        slot: run.slots.stream,
        onLine: (line) => {
          ctx.log.debug('pg_receivewal', { line });
        },
      });
      kills.push(() => receiver.kill());
      let event: WalEvent | undefined;
      let reason: WalArchiveResult['reason'] = 'rotated';
      try {
        while (!ctx.cancellationSignal.aborted) {
          event = await drainSpool(run);
          if (event) break;
          if (receiver.exit) receiverExited(receiver);
          const sample = await readLag(run.client, run.slots);
          await uploadPartial(run, sample.receivedLsn);
          record(run, sample);
          if (
            sample.guard === undefined ||
            sample.guard.walStatus === 'lost' ||
            sample.stream?.walStatus === 'lost'
          ) {
            reason = 'slot-check';
            break;
          }
          if (Date.now() - started >= (input.runForMs ?? 3_600_000)) break;
          await new Promise((resolve) => setTimeout(resolve, pollMs));
        }
      } catch (err) {
        // The server went away (a crash: pg_receivewal exited, or the poll's connection broke first):
        // what pg_receivewal received until then is the recovery point, so it goes to the store before the attempt fails.
        await receiver.stop();
        await drainSpool(run).catch(() => undefined);
        await uploadPartial(run, null, true).catch(() => undefined);
        throw err;
      }
      // Cleanly: pg_receivewal keeps its .partial for the next run (and the store a copy), completed segments are stored.
      await receiver.stop();
      event ??= await drainSpool(run);
      await uploadPartial(run, null, true);
      if (ctx.cancellationSignal.aborted) throw new CancelledFailure('WAL archiver stopped');
      return { archived: run.progress.archived, lastSegment: run.progress.lastSegment, reason, event };
    },
  );
}

/** pg_receivewal ended on its own (server gone, slot dropped): the caller stores what it received, then fails. */
function receiverExited(receiver: Receiver): never {
  const exit = receiver.exit!;
  throw failure(
    FailureType.ProcessFailed,
    `pg_receivewal ${exit.signal ? `killed by ${exit.signal}` : `exited ${exit.code}`}: ${exit.stderr || 'no error output'}`,
  );
}

/** Stores every completed segment and history file in the spool, oldest first; reports what needs telling. */
async function drainSpool(run: Run): Promise<WalEvent | undefined> {
  const { segmentBytes, systemId } = run.server;
  const contents = await readSpool(run.spool, segmentBytes);
  let event: WalEvent | undefined;
  for (const name of contents.histories) {
    await storeHistory(run.store, systemId, run.spool, name);
    await rm(path.join(run.spool, name));
    event = {
      kind: 'timeline-switch',
      message: `the server switched to timeline ${parseInt(name.slice(0, 8), 16)} (promotion or recovery); ${name} is stored and archiving follows the new timeline`,
    };
  }
  for (const segment of contents.segments) {
    const previous = run.progress.lastSegment;
    const sidecar = await storeSegment({
      store: run.store,
      systemId,
      spool: run.spool,
      segment,
      segmentBytes,
    });
    await advanceGuard(run.client, run.slots, formatLsn(segmentEndLsn(segment, segmentBytes)));
    await rm(path.join(run.spool, segment));
    await run.partial.completed(segment);
    if (run.progress.partial?.segment === segment) run.progress.partial = undefined;
    run.progress.archived++;
    run.progress.lastSegment = segment;
    run.progress.lastArchivedAt = sidecar.archivedAt;
    if (previous && segmentTimeline(previous) === segmentTimeline(segment)) {
      const [gap] = findSegmentGaps([previous, segment], segmentBytes);
      if (gap)
        event ??= {
          kind: 'gap',
          message: `WAL ${describeGap(gap)} never reached the archiver (between ${gap.after} and ${gap.before}): point-in-time recovery cannot cross it; take a new base backup`,
        };
    }
  }
  return event;
}

/** Uploads the segment being received when it grew (partial.ts); `force` when pg_receivewal has stopped. */
async function uploadPartial(run: Run, flushedLsn: number | null, force = false): Promise<void> {
  const sidecar = await run.partial.upload({ flushedLsn, force });
  if (sidecar)
    run.progress.partial = {
      segment: sidecar.segment,
      receivedLsn: sidecar.receivedLsn,
      at: sidecar.archivedAt,
    };
}

/**
 * Updates the progress, the lag gauges and the LSN history from one sample. Stored: the guard
 * slot's position (completed segments), or the newest partial upload's end when it is further.
 */
function record(run: Run, sample: WalLagRow): void {
  const now = Date.now();
  run.history.add(now, sample.currentLsn);
  const received = sample.receivedLsn;
  const partial = run.partial.uploaded ? parseLsn(run.partial.uploaded.receivedLsn) : null;
  const guard = sample.guard?.restartLsn ?? null;
  const stored = guard === null ? partial : Math.max(guard, partial ?? 0);
  const lag: WalLag = {
    systemId: run.server.systemId,
    currentLsn: formatLsn(sample.currentLsn),
    receivedLsn: received === null ? null : formatLsn(received),
    receivedLagBytes: received === null ? null : Math.max(0, sample.currentLsn - received),
    receivedLagSeconds: received === null ? null : run.history.lagSeconds(received, now),
    storedLsn: stored === null ? null : formatLsn(stored),
    storedLagBytes: stored === null ? null : Math.max(0, sample.currentLsn - stored),
    storedLagSeconds: stored === null ? null : run.history.lagSeconds(stored, now),
    at: new Date(now).toISOString(),
  };
  run.progress.lag = lag;
  run.deps.onLag?.(run.server.systemId, lag);
}
