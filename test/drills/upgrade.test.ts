/**
 * Drill 16: upgrades. A release replaces the worker while runs are open (a rolling update of the
 * worker Deployment: SIGTERM to the old pod, a new pod with the new build).
 * 1. A restore waits for approval on the old build; the worker is replaced by a build whose restore
 *    workflow changed (test/replay/changed-build.ts). Without patched() the new build cannot even
 *    replay the waiting run (it stays waiting, nothing changes); with patched() the approval goes
 *    through and the restore completes with the backup's data, on the new build.
 * 2. A dump runs while its worker gets SIGTERM: within the shutdown grace time it finishes on the
 *    old worker; held past it, it is cancelled, cleans up, and the new worker runs it again. Either
 *    way one backup, no partial object, no open upload, and the old worker exits 0 well inside the
 *    Deployment's terminationGracePeriodSeconds.
 * Real worker processes (`dbops worker`), real PostgreSQL, Temporal and versitygw.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createBackupStore, listBackupEntries } from '../../activities/storage';
import { backupWorkflowId } from '../../common/ids';
import type { RestoreResult } from '../../common/restore';
import { backupWorkflowArgs } from '../../src/client/backup';
import { connectClient } from '../../src/client/connection';
import { REPO_ROOT } from '../../src/config';
import type { backupWorkflow } from '../../workflows/backup';
import { restoreStatusQuery } from '../../workflows/restore-messages';
import { s3Overrides, testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { createPopulatedDatabase, dropDatabase } from '../integration/backup-helpers';
import { fingerprint } from '../integration/restore-fixtures';
import { bundleChangedWorkflows, DRILL_PATCH_ID } from '../replay/changed-build';
import { dbops } from './kit/dbops-cli';
import { addIncompressibleTable, dumpActivityOf, openMultipartUploads } from './kit/dump-control';
import { signal, waitForTool } from './kit/process-group';
import { recordDrill, stepLogger } from './kit/report';
import { restoreDrill, startRestoreAwaitingApproval } from './kit/restore';
import { watchStore } from './kit/store-watch';
import { s3WorkerEnv } from './kit/session';
import { startWorkerProcess, type WorkerProcess } from './kit/worker-process';

const EventType = temporal.api.enums.v1.EventType;
const step = stepLogger('drill 16');
const drill = restoreDrill('upgrade');
const bundles: { patched?: string; unpatched?: string } = {};

beforeAll(async () => {
  [bundles.patched, bundles.unpatched] = await Promise.all([
    bundleChangedWorkflows('patched', testRun().backupDir),
    bundleChangedWorkflows('unpatched', testRun().backupDir),
  ]);
}, 120_000);

/** A worker process of the drill's restore queue running `bundle` (the run's current code by default). */
function restoreWorker(bundle?: string): Promise<WorkerProcess> {
  return startWorkerProcess(
    { ...drill.env(), ...(bundle ? { DBOPS_WORKFLOW_BUNDLE: bundle } : {}) },
    { logFile: drill.logFile },
  );
}

/** A rolling update's stop: SIGTERM to the worker alone (as the kubelet sends it to PID 1); its exit code and time. */
async function terminate(worker: WorkerProcess): Promise<{ code: number | null; seconds: number }> {
  const at = Date.now();
  signal(worker.pid, 'SIGTERM');
  const code = await worker.exited;
  return { code, seconds: (Date.now() - at) / 1000 };
}

/** Identities of the workers that completed the run's workflow tasks, in order. */
async function workflowTaskWorkers(handle: WorkflowHandle): Promise<string[]> {
  const events = (await handle.fetchHistory()).events ?? [];
  return events
    .filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    .map((e) => e.workflowTaskCompletedEventAttributes?.identity ?? '');
}

/** Markers in the run's history that record the drill's patch (patched() returned true there). */
async function patchMarkers(handle: WorkflowHandle): Promise<number> {
  const events = (await handle.fetchHistory()).events ?? [];
  return events.filter((e) => {
    const details = Object.values(e.markerRecordedEventAttributes?.details ?? {});
    const texts = details.flatMap((d) =>
      (d.payloads ?? []).map((p) => Buffer.from(p.data ?? []).toString('utf8')),
    );
    return texts.some((t) => t.includes(DRILL_PATCH_ID));
  }).length;
}

it('a restore waiting for approval survives a worker upgrade whose restore workflow changed', async () => {
  const old = await restoreWorker();
  const { client, backupId, backedUp } = await drill.backUp(2000, Promise.resolve());
  const changed = await drill.changeAfterBackup();
  const { handle, status } = await startRestoreAwaitingApproval(client, drill.env().DBOPS_TASK_QUEUE!, {
    backup: backupId,
    target: drill.db,
  });
  step(`restore ${handle.workflowId} waits for approval on the old build (worker ${old.pid})`);
  const stop = await terminate(old);
  expect(stop.code).toBe(0);

  // The mistake: the new build changed the restore workflow without patched().
  const unpatched = await restoreWorker(bundles.unpatched);
  const replayError = await handle.query(restoreStatusQuery).then(
    () => 'answered',
    (e: unknown) => (e instanceof Error ? e.message : String(e)),
  );
  expect(replayError).toMatch(/nondetermin/i);
  expect(await fingerprint(drill.config, drill.db)).toEqual(changed);
  step(`unpatched build ${unpatched.pid} cannot replay the waiting restore: ${replayError.slice(0, 120)}`);
  expect((await terminate(unpatched)).code).toBe(0);

  // The release done right: the change behind patched().
  const patched = await restoreWorker(bundles.patched);
  const waiting = await handle.query(restoreStatusQuery);
  expect([waiting.phase, waiting.planHash]).toEqual(['awaiting-approval', status.planHash]);
  const approve = await dbops(
    drill.env(),
    'restore',
    'approve',
    handle.workflowId,
    '--plan-hash',
    status.planHash!,
    '--as',
    'bob',
  );
  expect(approve.code, approve.stderr).toBe(0);
  const result: RestoreResult = await handle.result();
  expect(result.outcome).toBe('restored');
  expect(await fingerprint(drill.config, drill.db)).toEqual(backedUp);
  // The run kept the old path (no marker: patched() is false for a run that passed that point
  // before the upgrade); everything after the approval ran on the new build.
  expect(await patchMarkers(handle)).toBe(0);
  const tasks = await workflowTaskWorkers(handle);
  expect(tasks.at(-1)!.startsWith(`${patched.pid}@`)).toBe(true);
  expect(tasks.some((t) => t.startsWith(`${old.pid}@`))).toBe(true);

  // A restore started on the new build takes the new step (dry run: policy, the step, the plan).
  const fresh = await client.workflow.start('restoreWorkflow', {
    taskQueue: drill.env().DBOPS_TASK_QUEUE!,
    workflowId: `${handle.workflowId}-after-upgrade`,
    args: [{ backup: backupId, target: drill.db, requestedBy: 'alice', dryRun: true }],
  });
  expect(((await fresh.result()) as RestoreResult).outcome).toBe('dry-run');
  expect(await patchMarkers(fresh)).toBe(1);
  recordDrill({
    drill: '16. restore awaiting approval across a worker upgrade',
    fault:
      'old worker SIGTERMed while the restore waits; replaced by a build whose restore workflow changed (unpatched, then patched)',
    dataCheck: `unpatched: status query refused (nondeterminism), target unchanged; patched: restored data = backup (${Object.keys(backedUp).length} fingerprints)`,
    outcome: `restored on the new build (${tasks.length} workflow tasks, last by the new worker); a new restore records the patch marker`,
  });
}, 240_000);

// ---- 2. a dump during a rolling restart ----

const suffix = uniqueSuffix();
const db = `t_drill_roll_${suffix}`;
const queue = `drill-roll-${suffix}`;
const s3 = s3Overrides(`drill-roll-${suffix}`);
const config = testConfig({ ...s3, DBOPS_TASK_QUEUE: queue, DBOPS_DATABASES: db });
const store = createBackupStore(config.storage);

/** The worker Deployment's terminationGracePeriodSeconds: the kubelet SIGKILLs a pod still running after it. */
const TERMINATION_GRACE_S = Number(
  /terminationGracePeriodSeconds:\s*(\d+)/.exec(
    readFileSync(path.join(REPO_ROOT, 'deploy', 'k8s', 'base', 'worker-deployment.yaml'), 'utf8'),
  )![1],
);

function backupWorker(): Promise<WorkerProcess> {
  return startWorkerProcess(s3WorkerEnv(queue, s3), {
    logFile: path.join(path.dirname(testRun().backupDir), `drill-roll-${suffix}-workers.log`),
  });
}

beforeAll(async () => {
  await createPopulatedDatabase(config, db, 2_000);
  await addIncompressibleTable(config, db, 12);
}, 120_000);

afterAll(async () => {
  await store.sweepInterrupted('');
  for (const o of await store.list('')) await store.delete(o.key);
  await store.close();
  await dropDatabase(config, db);
});

/**
 * Starts a backup on `old`, holds its pg_dump, starts the new pod's worker, SIGTERMs `old`, and
 * releases pg_dump after `holdMs` (0: at once). Returns the backup's end and the old worker's exit.
 */
async function dumpAcrossRestart(old: WorkerProcess, holdMs: number) {
  const { client, connection } = await connectClient(config);
  try {
    const watch = watchStore(store, db);
    const handle = await client.workflow.start<typeof backupWorkflow>('backupWorkflow', {
      taskQueue: queue,
      workflowId: backupWorkflowId(db, new Date()),
      args: [{ ...backupWorkflowArgs(config, db, 'manual'), prune: false }],
    });
    const { pid } = await waitForTool([old], 'pg_dump', { stop: true });
    const fresh = await backupWorker();
    const stopping = terminate(old);
    setTimeout(() => signal(pid, 'SIGCONT'), holdMs);
    const [result, stop] = await Promise.all([handle.result(), stopping]);
    if (stop.code !== 0)
      console.error(
        `old worker ${old.pid} exited ${stop.code} signal ${old.child.signalCode} after ${stop.seconds} s:\n${old.log().slice(-1500)}`,
      );
    const seen = await watch.stop();
    expect(seen.violations).toEqual([]);
    expect(await openMultipartUploads(config.storage)).toEqual([]);
    const entries = await listBackupEntries(store, db);
    expect(entries.find((e) => e.id === result.backupId)?.complete).toBe(true);
    expect(entries.every((e) => e.complete)).toBe(true);
    return { result, stop, fresh, dump: await dumpActivityOf(handle), polls: seen.polls };
  } finally {
    await connection.close();
  }
}

let next: WorkerProcess;

it('a dump under way when its worker gets SIGTERM finishes on that worker within the grace time', async () => {
  const old = await backupWorker();
  const { stop, fresh, dump, polls, result } = await dumpAcrossRestart(old, 0);
  next = fresh;
  expect(stop.code).toBe(0);
  expect([dump.scheduled, dump.attempt, dump.completed]).toEqual([1, 1, 1]);
  expect(dump.identity.startsWith(`${old.pid}@`)).toBe(true);
  step(`dump finished on the old worker; it exited 0 after ${stop.seconds.toFixed(1)} s`);
  recordDrill({
    drill: '16. SIGTERM to the worker mid-dump (rolling update)',
    fault: 'SIGTERM to the worker running pg_dump, a new worker polling',
    dataCheck: `${polls} listings: no partial object; open uploads after: 0; backup ${result.backupId} complete`,
    outcome: `finished on the old worker (attempt 1); it exited 0 in ${stop.seconds.toFixed(1)} s (grace ${TERMINATION_GRACE_S} s)`,
  });
}, 180_000);

it('a dump held past the shutdown grace time is cancelled, cleaned up and run again by the new worker', async () => {
  expect(next).toBeDefined();
  // Held 40 s: past the worker's 30 s shutdownGraceTime (src/worker/create.ts).
  const { stop, dump, polls, result, fresh } = await dumpAcrossRestart(next, 40_000);
  expect(stop.code).toBe(0);
  expect(stop.seconds).toBeLessThan(TERMINATION_GRACE_S);
  expect([dump.scheduled, dump.attempt, dump.completed]).toEqual([1, 2, 1]);
  expect(dump.identity.startsWith(`${fresh.pid}@`)).toBe(true);
  step(
    `dump cancelled at the grace time, old worker exited 0 after ${stop.seconds.toFixed(1)} s; attempt 2 finished`,
  );
  recordDrill({
    drill: '16. dump held past the shutdown grace (rolling update)',
    fault: 'SIGTERM to the worker whose pg_dump is stopped for 40 s (grace 30 s), a new worker polling',
    dataCheck: `${polls} listings: no partial object; open uploads after: 0; backup ${result.backupId} complete`,
    outcome: `old worker cancelled the dump and exited 0 in ${stop.seconds.toFixed(1)} s (< ${TERMINATION_GRACE_S} s); the new worker ran attempt 2`,
  });
}, 240_000);
