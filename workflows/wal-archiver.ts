import {
  CancellationScope,
  continueAsNew,
  defineQuery,
  defineSignal,
  isCancellation,
  log,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type { NotifyActivities } from '../activities/notify';
import type { WalActivities, WalEvent } from '../activities/postgres/wal';
import { FailureType, failure, rootMessage } from '../common/failures';
import { workflowRunUrl } from '../common/links';
import { isSystemIdentifier } from '../common/pitr';
import { activitiesWith } from './activity-profiles';

export interface WalArchiverInput {
  /** The cluster (pg_control_system().system_identifier). */
  readonly systemId: string;
  /** DBOPS_WAL_SLOT of the starter (`dbops wal start`); the workers must archive with the same slot. */
  readonly slot: string;
  /** Web UI base for links in Slack (not a secret). */
  readonly uiUrl?: string;
  /** One activity run's length (default 1 h) and the spool poll (default 500 ms): tests shorten them. */
  readonly runForMs?: number;
  readonly pollMs?: number;
  /** Default: the archiver profile's; drills pass seconds so a killed worker is noticed sooner. */
  readonly heartbeatTimeout?: Duration;
  /** Carried over continue-as-new. */
  readonly archivedBefore?: number;
  readonly lastSegment?: string;
}

export interface WalArchiverState {
  readonly systemId: string;
  readonly phase: 'archiving' | 'stopping' | 'stopped';
  /** Segments stored since the archiver was started (across continue-as-new). */
  readonly archived: number;
  readonly lastSegment?: string;
  /** Activity runs of this workflow run. */
  readonly runs: number;
  /** The newest events (slot lost, timeline switch, gap), newest last. */
  readonly events: readonly (WalEvent & { readonly at: string })[];
}

export interface WalArchiverResult {
  readonly systemId: string;
  readonly archived: number;
  readonly lastSegment?: string;
}

/** `dbops wal stop`: ends the archiver cleanly (pg_receivewal stopped, completed segments stored). */
export const walArchiverStopSignal = defineSignal('walArchiverStop');
export const walArchiverStateQuery = defineQuery<WalArchiverState>('walArchiverState');

/** Activity runs per workflow run: about four days of hourly runs, a few hundred history events. */
export const RUNS_PER_WORKFLOW_RUN = 100;

/**
 * The WAL archiver of one PostgreSQL cluster (id wal-archiver/<system id>): runs the archiving activity again and again (each run
 * streams for an hour, heartbeating; Temporal restarts it elsewhere if its worker dies), tells Slack
 * about a lost slot, a timeline switch or a gap, and continues as new after RUNS_PER_WORKFLOW_RUN
 * runs (or when Temporal suggests it) to keep its history bounded. Ends on walArchiverStopSignal
 * (completed) or a cancel (cancelled), both after the running activity stopped cleanly.
 */
export async function walArchiverWorkflow(input: WalArchiverInput): Promise<WalArchiverResult> {
  if (!isSystemIdentifier(input.systemId))
    throw failure(FailureType.InvalidInput, `not a PostgreSQL system identifier: ${input.systemId}`);
  const info = workflowInfo();
  let state: WalArchiverState = {
    systemId: input.systemId,
    phase: 'archiving',
    archived: input.archivedBefore ?? 0,
    lastSegment: input.lastSegment,
    runs: 0,
    events: [],
  };
  const runs = new CancellationScope();
  let stopRequested = false;
  setHandler(walArchiverStateQuery, () => state);
  setHandler(walArchiverStopSignal, () => {
    stopRequested = true;
    state = { ...state, phase: 'stopping' };
    runs.cancel();
  });
  const { archiveWal } = activitiesWith<WalActivities>('archiver', {
    summary: `archive the WAL of cluster ${input.systemId} (pg_receivewal)`,
    ...(input.heartbeatTimeout && { heartbeatTimeout: input.heartbeatTimeout }),
  });
  const notify = (text: string) =>
    activitiesWith<NotifyActivities>('notify', { summary: 'Slack: WAL archiver' }).notifySlack({
      text,
      link: {
        label: 'Open the archiver in the Temporal Web UI',
        url: workflowRunUrl(input.uiUrl ?? '', info.namespace, info.workflowId, info.runId),
      },
    });
  const result = () => ({
    systemId: input.systemId,
    archived: state.archived,
    lastSegment: state.lastSegment,
  });
  try {
    while (!stopRequested) {
      if (state.runs >= RUNS_PER_WORKFLOW_RUN || workflowInfo().continueAsNewSuggested)
        return await continueAsNew<typeof walArchiverWorkflow>({
          ...input,
          archivedBefore: state.archived,
          lastSegment: state.lastSegment,
        });
      const r = await runs.run(() =>
        archiveWal({
          systemId: input.systemId,
          slot: input.slot,
          runForMs: input.runForMs,
          pollMs: input.pollMs,
        }),
      );
      state = {
        ...state,
        runs: state.runs + 1,
        archived: state.archived + r.archived,
        lastSegment: r.lastSegment ?? state.lastSegment,
        events: r.event
          ? [...state.events, { ...r.event, at: new Date(Date.now()).toISOString() }].slice(-10)
          : state.events,
      };
      if (r.event) {
        log.warn('WAL archiver event', { kind: r.event.kind, message: r.event.message });
        await notify(`:warning: WAL archiver of cluster ${input.systemId}: ${r.event.message}`);
      }
    }
  } catch (err) {
    if (isCancellation(err)) {
      state = { ...state, phase: 'stopped' };
      if (stopRequested) return result();
      throw err;
    }
    await CancellationScope.nonCancellable(() =>
      notify(`:x: WAL archiver of cluster ${input.systemId} stopped: ${rootMessage(err)}`),
    );
    throw err;
  }
  state = { ...state, phase: 'stopped' };
  return result();
}
