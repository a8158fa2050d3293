import { ScheduleNotFoundError, type Client } from '@temporalio/client';
import type { Config } from '../config';
import { markedArea } from './ownership';
import { checkAreas, desiredSchedules } from './registry';
import { removeSchedule, staleSchedules } from './stale';

export { checkAreas, desiredSchedules, scheduleRegistry, type ScheduleArea } from './registry';

/**
 * What `schedules apply` did with one schedule: created or updated from the config; or, for a
 * schedule of this dbops the config no longer asks for, `stale` (kept: a dry run without --prune)
 * or `removed` (--prune).
 */
export type ApplyAction = 'created' | 'updated' | 'stale' | 'removed';

export interface AppliedSchedule {
  readonly id: string;
  readonly area: string;
  readonly action: ApplyAction;
  /**
   * Updated, but it lacks dbops' mark (ownership.ts: created before dbops marked its schedules,
   * or by hand), so --prune will never remove it once the config drops it.
   */
  readonly unmarked?: true;
}

/**
 * Creates missing schedules and updates existing ones to the desired spec/action/policies
 * (idempotent), then reports this dbops' schedules the config no longer asks for (ownership.ts,
 * stale.ts) and, with `prune`, deletes them. Pruning comes last: an apply that fails half-way
 * removes nothing. `areas` (e.g. ['backup']) limits both what is applied and what is pruned.
 */
export async function applySchedules(
  client: Client,
  config: Config,
  areas?: readonly string[],
  { prune = false }: { prune?: boolean } = {},
): Promise<AppliedSchedule[]> {
  checkAreas(areas);
  const out: AppliedSchedule[] = [];
  for (const { area, options } of desiredSchedules(config, areas)) {
    const handle = client.schedule.getHandle(options.scheduleId);
    try {
      const existing = await handle.describe();
      await handle.update((previous) => ({
        ...previous,
        spec: options.spec,
        action: options.action,
        policies: { ...previous.policies, ...options.policies },
      }));
      const unmarked = markedArea(existing.memo) === undefined ? { unmarked: true as const } : {};
      out.push({ id: options.scheduleId, area, action: 'updated', ...unmarked });
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      await client.schedule.create(options);
      out.push({ id: options.scheduleId, area, action: 'created' });
    }
  }
  for (const stale of await staleSchedules(client, config, areas)) {
    if (prune) await removeSchedule(client, stale.id);
    out.push({ id: stale.id, area: stale.area, action: prune ? 'removed' : 'stale' });
  }
  return out;
}
