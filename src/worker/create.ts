import { existsSync } from 'node:fs';
import path from 'node:path';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { Config } from '../config';
import { REPO_ROOT } from '../config';
import { buildActivities } from './activities';

/** Prebundled workflow code (made by `npm run build`), used when present so startup needs no webpack. */
export const WORKFLOW_BUNDLE_PATH = path.join(REPO_ROOT, 'dist', 'workflow-bundle.js');

export function workflowSource(): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  if (process.env.DBOPS_WORKFLOW_BUNDLE !== 'off' && existsSync(WORKFLOW_BUNDLE_PATH)) {
    return { workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH } };
  }
  return { workflowsPath: resolveSource(path.join(__dirname, '..', '..', 'workflows', 'index')) };
}

/** `file` + .ts when running from source (tsx, vitest), + .js when running the build. */
export function resolveSource(file: string): string {
  const ts = `${file}.ts`;
  return existsSync(ts) ? ts : `${file}.js`;
}

export interface CreatedWorker {
  worker: Worker;
  connection: NativeConnection;
}

export async function createWorker(
  config: Config,
  overrides: Partial<WorkerOptions> = {},
): Promise<CreatedWorker> {
  const connection = await NativeConnection.connect({
    address: config.temporal.address,
    tls: config.temporal.tls ? {} : undefined,
    apiKey: config.temporal.apiKey,
  });
  try {
    const worker = await Worker.create({
      connection,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      ...workflowSource(),
      activities: buildActivities(config),
      // Long activities get this long to see the cancellation on their next heartbeat and clean up.
      shutdownGraceTime: '30s',
      ...overrides,
    });
    return { worker, connection };
  } catch (err) {
    await connection.close();
    throw err;
  }
}
