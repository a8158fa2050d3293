import {
  ScheduleNotFoundError,
  type Client,
  type ScheduleDescription,
  type ScheduleHandle,
} from '@temporalio/client';
import { FailureType, failure } from '../../common/failures';
import type { Config } from '../config';
import { desiredSchedules } from './registry';
import { staleSchedules } from './stale';

export interface ScheduleState {
  readonly id: string;
  readonly area: string;
  /** null when the schedule is missing (not applied yet). */
  readonly paused: boolean | null;
  readonly nextRun: string | null;
  readonly lastRun: string | null;
  readonly missing?: true;
  /** A schedule of this dbops the config no longer asks for: `schedules apply --prune` removes it. */
  readonly stale?: true;
}

/** The handle of schedule `id`; NotFound (with what to run) when Temporal has no such schedule. */
export async function knownSchedule(client: Client, id: string): Promise<ScheduleHandle> {
  const handle = client.schedule.getHandle(id);
  try {
    await handle.describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) {
      throw failure(
        FailureType.NotFound,
        `no schedule ${id}: run "dbops schedules apply", then "dbops schedules list"`,
      );
    }
    throw err;
  }
  return handle;
}

function runs(d: ScheduleDescription): Pick<ScheduleState, 'paused' | 'nextRun' | 'lastRun'> {
  return {
    paused: d.state.paused,
    nextRun: d.info.nextActionTimes[0]?.toISOString() ?? null,
    lastRun: d.info.recentActions.at(-1)?.takenAt.toISOString() ?? null,
  };
}

/**
 * Every schedule the config asks for, with its state in Temporal (or missing), then this dbops'
 * schedules the config no longer asks for (stale.ts).
 */
export async function scheduleStates(client: Client, config: Config): Promise<ScheduleState[]> {
  const out: ScheduleState[] = [];
  for (const { area, options } of desiredSchedules(config)) {
    try {
      const d = await client.schedule.getHandle(options.scheduleId).describe();
      out.push({ id: options.scheduleId, area, ...runs(d) });
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      out.push({ id: options.scheduleId, area, paused: null, nextRun: null, lastRun: null, missing: true });
    }
  }
  for (const { id, area, description: d } of await staleSchedules(client, config)) {
    out.push({ id, area, ...runs(d), stale: true });
  }
  return out;
}
