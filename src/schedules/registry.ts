import type { ScheduleOptions } from '@temporalio/client';
import { FailureType, failure } from '../../common/failures';
import type { Config } from '../config';
import { backupSchedules } from './backup';
import { baseBackupSchedules } from './basebackup';
import { milvusMaintenanceSchedules } from './milvus';
import { markedByDbops } from './ownership';
import { partitionMaintenanceSchedules } from './partitions';

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
  { area: 'basebackup', describe: baseBackupSchedules },
];

/**
 * `areas` as given to `--area`, checked against the registry: a misspelt area would otherwise
 * apply nothing and prune nothing without a word.
 */
export function checkAreas(areas: readonly string[] | undefined): void {
  const known = scheduleRegistry.map((a) => a.area);
  const unknown = (areas ?? []).filter((a) => !known.includes(a));
  if (unknown.length > 0) {
    throw failure(
      FailureType.InvalidInput,
      `unknown schedule area ${unknown.map((a) => `"${a}"`).join(', ')}: use ${known.join(', ')} (or no --area for all)`,
    );
  }
}

/** Whether `area` is one of `areas` (no areas: every area, also ones a later dbops no longer has). */
export function inAreas(area: string, areas: readonly string[] | undefined): boolean {
  return !areas?.length || areas.includes(area);
}

/**
 * The schedules the config asks for, each marked as dbops' own (ownership.ts); `areas` limits them
 * (e.g. ['backup']).
 */
export function desiredSchedules(
  config: Config,
  areas?: readonly string[],
): { area: string; options: ScheduleOptions }[] {
  return scheduleRegistry
    .filter((a) => inAreas(a.area, areas))
    .flatMap((a) =>
      a.describe(config).map((options) => ({ area: a.area, options: markedByDbops(options, a.area) })),
    );
}
