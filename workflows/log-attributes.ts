import { workflowInfo, type WorkflowInterceptorsFactory } from '@temporalio/workflow';

/**
 * Every workflow log line carries the run's attempt beside the SDK's workflowId, runId and
 * workflowType, as activity lines carry theirs: one query over the JSON log finds a retried run's
 * lines by attempt (src/worker/logging.ts). No commands: replay is unaffected.
 */
export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      getLogAttributes: (input, next) => next({ ...input, attempt: workflowInfo().attempt }),
    },
  ],
});
