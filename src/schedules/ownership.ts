import type { ScheduleDescription, ScheduleOptions } from '@temporalio/client';

/**
 * How dbops knows a schedule is its own: every schedule it creates carries its area in this memo
 * key. A memo is set when a schedule is created and never changes (Temporal's UpdateSchedule has
 * no memo), so the mark means "created by dbops". An ID prefix would not: anyone can create
 * `backup-x` by hand, and `--prune` must never remove a schedule dbops did not create.
 */
export const AREA_MEMO_KEY = 'dbopsArea';

/** `options` with dbops' mark for `area` added to its memo. */
export function markedByDbops(options: ScheduleOptions, area: string): ScheduleOptions {
  return { ...options, memo: { ...options.memo, [AREA_MEMO_KEY]: area } };
}

/** The area in a schedule's memo, when dbops created it; undefined for any other schedule. */
export function markedArea(memo: Record<string, unknown> | undefined): string | undefined {
  const area = memo?.[AREA_MEMO_KEY];
  return typeof area === 'string' && area.length > 0 ? area : undefined;
}

/**
 * The area of a schedule that belongs to the dbops deployment serving `taskQueue`: created by
 * dbops AND starting its runs on that task queue. A namespace may hold the schedules of more than
 * one dbops (staging and production, each with its DBOPS_TASK_QUEUE; every test file of a run):
 * one deployment's config says nothing about another's schedules.
 */
export function ownedArea(description: ScheduleDescription, taskQueue: string): string | undefined {
  const area = markedArea(description.memo);
  return area !== undefined && description.action.taskQueue === taskQueue ? area : undefined;
}
