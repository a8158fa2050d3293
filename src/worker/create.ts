import { existsSync } from 'node:fs';
import path from 'node:path';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { buildInfo, workerIdentity } from '../build-info';
import type { Config } from '../config';
import { dataConverter, sealsPayloads } from '../codec/data-converter';
import { dumpTaskQueue } from '../../common/ids';
import { setFailpoints } from '../../activities/failpoints';
import { buildActivities, buildDumpActivities } from './activities';
import { sealedBundlePath, WORKFLOW_BUNDLE_PATH, workflowsFromSource } from './bundle';
import { outcomeSinks } from './outcomes';
import { explainTemporalConnectError, temporalConnectionOptions } from '../../activities/temporal-connection';

export { resolveSource, WORKFLOW_BUNDLE_PATH } from './bundle';

/**
 * The built worker (running from dist/, as in the image) loads the prebundle: no webpack at start-up.
 * Running from source (tsx, tests) always bundles the current workflows/, so a stale build can never
 * run old workflow code. DBOPS_WORKFLOW_BUNDLE=off forces bundling from source; an absolute path
 * loads that bundle instead (the test run bundles once in test/global-setup.ts, from the current
 * source, and every worker of the run loads it: webpack once per run instead of once per worker).
 * `sealed` (DBOPS_PAYLOAD_KEYS set): each prebundle's sibling built with the sealing failure
 * converter (sealedBundlePath); bundling from source takes it from the worker's data converter.
 */
export function workflowSource(
  sealed = false,
): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath' | 'interceptors'> {
  const chosen = process.env.DBOPS_WORKFLOW_BUNDLE;
  const pick = (bundle: string) => (sealed ? sealedBundlePath(bundle) : bundle);
  if (chosen && chosen !== 'off') {
    if (!path.isAbsolute(chosen) || !existsSync(pick(chosen))) {
      throw new Error(
        `DBOPS_WORKFLOW_BUNDLE=${chosen}: must be off or the absolute path of an existing workflow bundle${sealed ? ` with its sibling ${pick(chosen)} for DBOPS_PAYLOAD_KEYS` : ''} (npm run build writes ${WORKFLOW_BUNDLE_PATH} and ${sealedBundlePath(WORKFLOW_BUNDLE_PATH)})`,
      );
    }
    return { workflowBundle: { codePath: pick(chosen) } };
  }
  const runningBuild = __filename.endsWith('.js') && __dirname.includes(`${path.sep}dist${path.sep}`);
  if (runningBuild && chosen !== 'off' && existsSync(pick(WORKFLOW_BUNDLE_PATH))) {
    return { workflowBundle: { codePath: pick(WORKFLOW_BUNDLE_PATH) } };
  }
  return workflowsFromSource();
}

/**
 * After SIGTERM, running activities get this long to finish before they are cancelled (and clean
 * up). The worker Deployment's terminationGracePeriodSeconds (120) must leave room for it plus the
 * cleanup; drill 16 (test/drills/upgrade.test.ts) checks both.
 */
export const SHUTDOWN_GRACE_SECONDS = 30;

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
  const connection = await NativeConnection.connect(temporalConnectionOptions(config.temporal)).catch(
    (err: unknown) => {
      throw explainTemporalConnectError(err, config.temporal);
    },
  );
  // Every poller, workflow task and activity attempt names this build (docs/upgrades.md).
  const build = buildInfo();
  // Both workers encrypt and decrypt payloads with DBOPS_PAYLOAD_KEYS (src/codec/), outside the sandbox.
  const named = { identity: workerIdentity(build), buildId: build.id, dataConverter: dataConverter(config) };
  try {
    const worker = await Worker.create({
      ...named,
      connection,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      // A caller that brings its own workflow code (tests with fixture workflows) gets only that.
      ...('workflowsPath' in overrides || 'workflowBundle' in overrides
        ? {}
        : workflowSource(sealsPayloads(config))),
      activities: buildActivities(config),
      // Each run's outcome, reported by the workflows' interceptor, becomes metrics (./outcomes.ts).
      sinks: outcomeSinks,
      // Long activities get this long to see the cancellation on their next heartbeat and clean up.
      shutdownGraceTime: `${SHUTDOWN_GRACE_SECONDS}s`,
      ...overrides,
    });
    const dumpWorker = await Worker.create({
      ...named,
      connection,
      namespace: config.temporal.namespace,
      taskQueue: dumpTaskQueue(config.temporal.taskQueue),
      activities: buildDumpActivities(config),
      maxConcurrentActivityTaskExecutions: config.backup.maxConcurrentDumps,
      // Heartbeats carry cancellation back: send them often enough that a cancel kills pg_dump within seconds.
      maxHeartbeatThrottleInterval: '3s',
      defaultHeartbeatThrottleInterval: '3s',
      shutdownGraceTime: overrides.shutdownGraceTime ?? `${SHUTDOWN_GRACE_SECONDS}s`,
    });
    return { worker, dumpWorker, connection };
  } catch (err) {
    await connection.close();
    throw err;
  }
}
