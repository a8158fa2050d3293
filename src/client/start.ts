// src/client/: the one place that starts, finds, queries, updates and signals dbops' workflows,
// one file per area, for the CLI, the schedules, tests and benchmarks (the CLI only parses and prints).
import {
  WorkflowExecutionAlreadyStartedError,
  type Client,
  type ScheduleOptionsStartWorkflowAction,
  type WorkflowHandle,
  type WorkflowStartOptions,
} from '@temporalio/client';
import type * as workflows from '../../workflows';

/** The workflows the worker registers, by type name: its bundle entry (workflows/index.ts) exports them. */
type Workflows = typeof workflows;

/**
 * Starts the workflow `type`, its name and arguments checked against the worker's bundle entry;
 * when the run's ID is taken (and its ID policies refuse a second run), returns the handle of the
 * run holding it: a business ID (common/ids.ts) makes a repeated start the same operation.
 */
export async function startOrJoin<N extends keyof Workflows>(
  client: Client,
  type: N,
  options: WorkflowStartOptions<Workflows[N]>,
): Promise<{ handle: WorkflowHandle<Workflows[N]>; runId: string | undefined; started: boolean }> {
  try {
    const handle = await client.workflow.start<Workflows[N]>(type, options);
    return { handle, runId: handle.firstExecutionRunId, started: true };
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    return { handle: client.workflow.getHandle(options.workflowId), runId: undefined, started: false };
  }
}

/** A schedule's action that starts workflow `N`: its name and arguments checked like startOrJoin's. */
export type ScheduledStart<N extends keyof Workflows> = ScheduleOptionsStartWorkflowAction<Workflows[N]> & {
  readonly workflowType: N;
};
