import type { createSystemActivities } from '../activities/system';
import { activitiesWith } from './activity-profiles';

const { describeWorker } = activitiesWith<ReturnType<typeof createSystemActivities>>('short');

/** A trivial round trip through a worker: used by `dbops doctor --deep` and the foundation test. */
export async function pingWorkflow(message: string): Promise<{ echo: string; worker: string }> {
  const info = await describeWorker();
  return { echo: message, worker: info.identity };
}
