import { WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import { withPg } from '../../activities/postgres/connection';
import {
  checkWalArchive,
  lastArchivedSegment,
  serverWal,
  walServerStatus,
  type WalCheckReport,
  type WalLag,
  type WalServerStatus,
} from '../../activities/postgres/wal';
import { withBackupStore } from '../../activities/storage';
import { walArchiverWorkflowId } from '../../common/ids';
import { segmentTimeline } from '../../common/pitr';
import { DBOPS_OPERATION } from '../../common/search-attributes';
import {
  walArchiverStateQuery,
  walArchiverStopSignal,
  type WalArchiverState,
  type walArchiverWorkflow,
} from '../../workflows/wal-archiver';
import type { Config } from '../config';
import { startOrJoin } from './start';

/** The configured server's cluster: the archiver's workflow id and store folder are named by it. */
export async function clusterSystemId(config: Config): Promise<string> {
  return withPg(config.pg, undefined, async (client) => (await serverWal(client)).systemId);
}

/** Options tests and drills pass; the CLI uses the workflow's defaults. */
export interface WalArchiverTuning {
  readonly runForMs?: number;
  readonly pollMs?: number;
  readonly heartbeatTimeout?: Duration;
}

/** Starts the archiver of the configured server, or joins the one running (one per cluster). */
export async function startWalArchiver(
  client: Client,
  config: Config,
  tuning: WalArchiverTuning = {},
): Promise<{ handle: WorkflowHandle<typeof walArchiverWorkflow>; systemId: string; started: boolean }> {
  const systemId = await clusterSystemId(config);
  const { handle, started } = await startOrJoin(client, 'walArchiverWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId: walArchiverWorkflowId(systemId),
    args: [{ systemId, slot: config.wal.slot, uiUrl: config.temporal.uiUrl, ...tuning }],
    staticSummary: `archive the WAL of cluster ${systemId} (${config.pg.host}:${config.pg.port})`,
    typedSearchAttributes: [{ key: DBOPS_OPERATION, value: 'wal-archiver' }],
  });
  return { handle, systemId, started };
}

/** Asks the archiver to stop cleanly and waits for it; false when none was running. */
export async function stopWalArchiver(client: Client, systemId: string): Promise<boolean> {
  const handle = client.workflow.getHandle<typeof walArchiverWorkflow>(walArchiverWorkflowId(systemId));
  try {
    if ((await handle.describe()).status.name !== 'RUNNING') return false;
    await handle.signal(walArchiverStopSignal);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
  await handle.result();
  return true;
}

export interface WalStatus {
  readonly workflowId: string;
  /** RUNNING, COMPLETED, FAILED… or NOT_STARTED. */
  readonly state: string;
  readonly archiver?: WalArchiverState;
  /** The running activity: its attempt, the last failure of an earlier attempt, its last heartbeat. */
  readonly activity?: {
    readonly attempt: number;
    readonly lastFailure?: string;
    /** Segments this attempt stored so far, and the lag it sampled last. */
    readonly archived?: number;
    readonly lag?: WalLag;
  };
  /** Segments stored since the archiver started: finished runs plus the running attempt's. */
  readonly archived?: number;
  readonly lastArchivedSegment?: string;
  readonly server: WalServerStatus;
}

/** `dbops wal status`: the workflow, its running activity's last heartbeat, the server and the store. */
export async function walStatus(client: Client, config: Config): Promise<WalStatus> {
  // With the store: the stored lag counts the newest partial upload of the segment being received.
  const { server, lastArchived } = await withBackupStore(config.storage, async (store) => {
    const server = await walServerStatus(config.pg, config.wal.slot, store);
    const timeline = segmentTimeline(server.currentSegment);
    return {
      server,
      lastArchived: await lastArchivedSegment(store, server.systemId, timeline, server.currentSegment),
    };
  });
  const workflowId = walArchiverWorkflowId(server.systemId);
  const base = { workflowId, server, ...(lastArchived && { lastArchivedSegment: lastArchived }) };
  const handle = client.workflow.getHandle<typeof walArchiverWorkflow>(workflowId);
  let description;
  try {
    description = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { ...base, state: 'NOT_STARTED' };
    throw err;
  }
  const state = description.status.name;
  if (state !== 'RUNNING') return { ...base, state };
  const pending = description.raw.pendingActivities?.[0];
  const details = pending?.heartbeatDetails?.payloads;
  const beat = details?.length
    ? await decodeFromPayloadsAtIndex<{ lag?: WalLag; archived?: number }>(
        client.options.loadedDataConverter,
        0,
        details,
      )
    : undefined;
  const archiver = await handle.query(walArchiverStateQuery);
  return {
    ...base,
    state,
    archiver,
    archived: archiver.archived + (beat?.archived ?? 0),
    ...(pending && {
      activity: {
        attempt: pending.attempt ?? 1,
        ...(pending.lastFailure?.message && { lastFailure: pending.lastFailure.message }),
        ...(beat?.archived !== undefined && { archived: beat.archived }),
        ...(beat?.lag && { lag: beat.lag }),
      },
    }),
  };
}

/** `dbops wal check`: the store's archive of the configured server's cluster. */
export async function walCheck(config: Config, options: { verify?: boolean } = {}): Promise<WalCheckReport> {
  const systemId = await clusterSystemId(config);
  return withBackupStore(config.storage, (store) => checkWalArchive(store, systemId, options));
}
