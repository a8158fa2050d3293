import { ScheduleNotFoundError, type Client, type ScheduleDescription } from '@temporalio/client';
import type { Config } from '../config';
import { markedArea, ownedArea } from './ownership';
import { desiredSchedules, inAreas } from './registry';

/** A schedule of this dbops that its config no longer asks for. */
export interface StaleSchedule {
  readonly id: string;
  readonly area: string;
  readonly description: ScheduleDescription;
}

/**
 * The schedules of this dbops deployment (ownership.ts: created by dbops, runs on the config's task
 * queue) in `areas` (none: all) that the config no longer asks for: a database removed from
 * DBOPS_DATABASES, an area turned off. The namespace's schedule list is eventually consistent, so
 * every candidate is described (strongly consistent) before it counts; one created a moment ago
 * may be missed and is found by the next run.
 */
export async function staleSchedules(
  client: Client,
  config: Config,
  areas?: readonly string[],
): Promise<StaleSchedule[]> {
  // Desired in any area: a schedule the config asks for is never stale, whatever --area says.
  const desired = new Set(desiredSchedules(config).map((d) => d.options.scheduleId));
  const candidates: string[] = [];
  for await (const s of client.schedule.list()) {
    const area = markedArea(s.memo);
    if (area !== undefined && inAreas(area, areas) && !desired.has(s.scheduleId))
      candidates.push(s.scheduleId);
  }
  const out: StaleSchedule[] = [];
  for (const id of candidates.sort()) {
    let description: ScheduleDescription;
    try {
      description = await client.schedule.getHandle(id).describe();
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) continue; // deleted since the list was indexed
      throw err;
    }
    const area = ownedArea(description, config.temporal.taskQueue);
    if (area !== undefined && inAreas(area, areas)) out.push({ id, area, description });
  }
  return out;
}

/**
 * Deletes stale schedule `id`. Runs it already started go on (Temporal does not stop them) and
 * backups stay in the store; a schedule already gone counts as removed.
 */
export async function removeSchedule(client: Client, id: string): Promise<void> {
  try {
    await client.schedule.getHandle(id).delete();
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  }
}
