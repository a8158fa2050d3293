import { TestWorkflowEnvironment } from '@temporalio/testing';
import { stackVars } from './stack';

/**
 * A time-skipping Temporal test server, using the binary the dev stack installed
 * (@temporalio/testing would try to download one, which fails offline).
 */
export async function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const path = stackVars().DBOPS_TEMPORAL_TEST_SERVER;
  if (!path)
    throw new Error('DBOPS_TEMPORAL_TEST_SERVER missing from the dev stack: run npm run stack -- up');
  return TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path } },
  });
}
