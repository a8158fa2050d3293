import { ScheduleNotFoundError, type Client, type ScheduleOptions } from '@temporalio/client';
import type { Config } from '../config';
import { backupSchedules } from './backup';
import { partitionMaintenanceSchedules } from './partitions';
import { milvusMaintenanceSchedules } from './milvus';

/** One area's schedules (one file per area); `describe` builds them from the config. */
export interface ScheduleArea {
  readonly area: string;
  describe(config: Config): ScheduleOptions[];
}

/** Every schedule dbops manages. Add your area's entry here. */
export const scheduleRegistry: readonly ScheduleArea[] = [
  { area: 'backup', describe: backupSchedules },
  { area: 'partitions', describe: partitionMaintenanceSchedules },
  { area: 'milvus', describe: milvusMaintenanceSchedules },
];

/** The schedules the config asks for; `areas` limits them (e.g. ['backup']). */
export function desiredSchedules(
  config: Config,
  areas?: readonly string[],
): { area: string; options: ScheduleOptions }[] {
  return scheduleRegistry
    .filter((a) => !areas?.length || areas.includes(a.area))
    .flatMap((a) => a.describe(config).map((options) => ({ area: a.area, options })));
}

/** Creates missing schedules and updates existing ones to the desired spec/action/policies (idempotent). */
export async function applySchedules(
  client: Client,
  config: Config,
  areas?: readonly string[],
): Promise<{ id: string; area: string; action: 'created' | 'updated' }[]> {
  const out: { id: string; area: string; action: 'created' | 'updated' }[] = [];
  for (const { area, options } of desiredSchedules(config, areas)) {
    const handle = client.schedule.getHandle(options.scheduleId);
    try {
      await handle.describe();
      await handle.update((previous) => ({
        ...previous,
        spec: options.spec,
        action: options.action,
        policies: { ...previous.policies, ...options.policies },
      }));
      out.push({ id: options.scheduleId, area, action: 'updated' });
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      await client.schedule.create(options);
      out.push({ id: options.scheduleId, area, action: 'created' });
    }
  }
  return out;
}
