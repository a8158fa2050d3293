import { existsSync } from 'node:fs';
import path from 'node:path';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { Config } from '../config';
import { REPO_ROOT } from '../config';
import { dumpTaskQueue } from '../../common/ids';
import { setFailpoints } from '../../activities/failpoints';
import { buildActivities, buildDumpActivities } from './activities';

/** Prebundled workflow code, written by `npm run build` next to the compiled worker. */
export const WORKFLOW_BUNDLE_PATH = path.join(REPO_ROOT, 'dist', 'workflow-bundle.js');

/**
 * The built worker (running from dist/, as in the image) loads the prebundle: no webpack at start-up.
 * Running from source (tsx, tests) always bundles the current workflows/, so a stale build can never
 * run old workflow code. DBOPS_WORKFLOW_BUNDLE=off forces bundling from source; an absolute path
 * loads that bundle instead (the test run bundles once in test/global-setup.ts, from the current
 * source, and every worker of the run loads it: webpack once per run instead of once per worker).
 */
export function workflowSource(): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  const chosen = process.env.DBOPS_WORKFLOW_BUNDLE;
  if (chosen && chosen !== 'off') {
    if (!path.isAbsolute(chosen) || !existsSync(chosen)) {
      throw new Error(
        `DBOPS_WORKFLOW_BUNDLE=${chosen}: must be off or the absolute path of an existing workflow bundle (npm run build writes ${WORKFLOW_BUNDLE_PATH})`,
      );
    }
    return { workflowBundle: { codePath: chosen } };
  }
  const runningBuild = __filename.endsWith('.js') && __dirname.includes(`${path.sep}dist${path.sep}`);
  if (runningBuild && chosen !== 'off' && existsSync(WORKFLOW_BUNDLE_PATH)) {
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
  /** Workflows and every activity except dumps, on the configured task queue. */
  worker: Worker;
  /** Dump activities only, on `<taskQueue>-dumps`, at most DBOPS_MAX_CONCURRENT_DUMPS at a time. */
  dumpWorker: Worker;
  connection: NativeConnection;
}

/** Runs both workers until either stops (signal, shutdown or failure), then stops the other. */
export async function runWorkers(created: Pick<CreatedWorker, 'worker' | 'dumpWorker'>): Promise<void> {
  const all = [created.worker, created.dumpWorker];
  const stopOthers = () => {
    for (const w of all) if (w.getState() === 'RUNNING') w.shutdown();
  };
  const runs = all.map((w) => w.run().finally(stopOthers));
  const results = await Promise.allSettled(runs);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

export async function createWorker(
  config: Config,
  overrides: Partial<WorkerOptions> = {},
): Promise<CreatedWorker> {
  setFailpoints(new Map(config.failpoints));
  if (config.failpoints.length > 0) {
    process.stderr.write(
      `dbops worker: DBOPS_FAILPOINTS is set (${config.failpoints.map(([n]) => n).join(', ')}): this worker will crash or stall on purpose; fault drills only\n`,
    );
  }
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
      // A caller that brings its own workflow code (tests with fixture workflows) gets only that.
      ...('workflowsPath' in overrides || 'workflowBundle' in overrides ? {} : workflowSource()),
      activities: buildActivities(config),
      // Long activities get this long to see the cancellation on their next heartbeat and clean up.
      shutdownGraceTime: '30s',
      ...overrides,
    });
    const dumpWorker = await Worker.create({
      connection,
      namespace: config.temporal.namespace,
      taskQueue: dumpTaskQueue(config.temporal.taskQueue),
      activities: buildDumpActivities(config),
      maxConcurrentActivityTaskExecutions: config.backup.maxConcurrentDumps,
      // Heartbeats carry cancellation back: send them often enough that a cancel kills pg_dump within seconds.
      maxHeartbeatThrottleInterval: '3s',
      defaultHeartbeatThrottleInterval: '3s',
      shutdownGraceTime: overrides.shutdownGraceTime ?? '30s',
    });
    return { worker, dumpWorker, connection };
  } catch (err) {
    await connection.close();
    throw err;
  }
}
