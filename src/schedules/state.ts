import { ScheduleNotFoundError, type Client, type ScheduleHandle } from '@temporalio/client';
import { FailureType, failure } from '../../common/failures';
import type { Config } from '../config';
import { desiredSchedules } from './index';

export interface ScheduleState {
  readonly id: string;
  readonly area: string;
  /** null when the schedule is missing (not applied yet). */
  readonly paused: boolean | null;
  readonly nextRun: string | null;
  readonly lastRun: string | null;
  readonly missing?: true;
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

/** Every schedule the config asks for, with its state in Temporal (or missing). */
export async function scheduleStates(client: Client, config: Config): Promise<ScheduleState[]> {
  const out: ScheduleState[] = [];
  for (const { area, options } of desiredSchedules(config)) {
    try {
      const d = await client.schedule.getHandle(options.scheduleId).describe();
      out.push({
        id: options.scheduleId,
        area,
        paused: d.state.paused,
        nextRun: d.info.nextActionTimes[0]?.toISOString() ?? null,
        lastRun: d.info.recentActions.at(-1)?.takenAt.toISOString() ?? null,
      });
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      out.push({ id: options.scheduleId, area, paused: null, nextRun: null, lastRun: null, missing: true });
    }
  }
  return out;
}
