/**
 * Drill 1: the worker running a backup's dump is SIGKILLed (with its pg_dump and zstd) while the
 * S3 multipart upload is open and holds parts. Another worker must finish the backup, once; a
 * reader of the bucket must never see a partial object or a `latest` that moved early; and the
 * killed attempt's multipart upload must not stay behind in the bucket (issue 15 reproduced it).
 * Two cases: the only worker killed and new workers started; two workers running, the dumping one
 * killed and the other finishing. Against the dev stack's versitygw, under the run's own prefix.
 */
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client, Connection, WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  createBackupStore,
  listBackupEntries,
  loadManifest,
  type BackupStore,
} from '../../activities/storage';
import { backupFileKey, MANIFEST_FILE } from '../../common/backup';
import { backupWorkflowId } from '../../common/ids';
import { backupWorkflowArgs } from '../../src/client/backup';
import { connectClient } from '../../src/client/connection';
import type { backupWorkflow } from '../../workflows/backup';
import { s3Overrides, testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { createPopulatedDatabase, dropDatabase, rowCounts } from '../integration/backup-helpers';
import {
  addIncompressibleTable,
  dumpActivityOf,
  holdDumpWhen,
  openMultipartUploads,
} from './kit/dump-control';
import { waitForTool } from './kit/process-group';
import { recordDrill, stepLogger } from './kit/report';
import { watchStore } from './kit/store-watch';
import { s3WorkerEnv } from './kit/session';
import { killAllWorkerProcesses, startWorkerProcess, type WorkerProcess } from './kit/worker-process';

const suffix = uniqueSuffix();
const db = `t_drill_wkill_${suffix}`;
const queue = `drill-wkill-${suffix}`;
const s3 = s3Overrides(`drill-wkill-${suffix}`);
const config = testConfig({ ...s3, DBOPS_TASK_QUEUE: queue, DBOPS_DATABASES: db });
/** ~24 MiB of random bytes: the compressed archive spans three 8 MiB parts. */
const NOISE_MIB = 24;
/** A killed worker is noticed when its heartbeats stop: seconds here instead of the default minute. */
const HEARTBEAT_TIMEOUT = '8s';
const logDir = path.dirname(testRun().backupDir);

let client: Client;
let connection: Connection;
let store: BackupStore;
let workers = 0;
const step = stepLogger('drill 1');

function startWorker(): Promise<WorkerProcess> {
  return startWorkerProcess(s3WorkerEnv(queue, s3), {
    logFile: path.join(logDir, `drill-wkill-${suffix}-worker${++workers}.log`),
  });
}

let pair: WorkerProcess[];
beforeAll(async () => {
  [pair] = await Promise.all([
    Promise.all([startWorker(), startWorker()]),
    (async () => {
      await createPopulatedDatabase(config, db, 5_000);
      await addIncompressibleTable(config, db, NOISE_MIB);
    })(),
  ]);
  ({ client, connection } = await connectClient(config));
  store = createBackupStore(config.storage);
  step('database and two workers ready');
}, 120_000);

afterAll(async () => {
  await killAllWorkerProcesses();
  await connection?.close();
  if (store) {
    await store.sweepInterrupted('');
    for (const o of await store.list('')) await store.delete(o.key);
    await store.close();
  }
  await dropDatabase(config, db);
});

function startDrillBackup(): Promise<WorkflowHandle<typeof backupWorkflow>> {
  return client.workflow.start<typeof backupWorkflow>('backupWorkflow', {
    taskQueue: queue,
    workflowId: backupWorkflowId(db, new Date()),
    args: [
      { ...backupWorkflowArgs(config, db, 'manual'), prune: false, dumpHeartbeatTimeout: HEARTBEAT_TIMEOUT },
    ],
  });
}

/**
 * Holds pg_dump of one of `candidates` until its multipart upload has parts; kills that worker.
 * `onDumping` runs once the dump is under way (to start workers that cannot take it any more).
 */
async function killMidUpload(candidates: WorkerProcess[], onDumping = () => {}) {
  const { worker, pid } = await waitForTool(candidates, 'pg_dump');
  onDumping();
  let open: Awaited<ReturnType<typeof openMultipartUploads>> = [];
  await holdDumpWhen(pid, async () => {
    open = await openMultipartUploads(config.storage, `${db}/`);
    return open.some((u) => u.partBytes > 0);
  });
  worker.kill();
  await worker.exited;
  step(
    `killed worker ${worker.pid} (pg_dump ${pid} held) with upload ${open[0]!.uploadId}: ${open[0]!.partBytes} bytes in parts`,
  );
  // The kill cannot abort the upload: it is still open, which is what the retry must clean up.
  expect((await openMultipartUploads(config.storage, `${db}/`)).map((u) => u.uploadId)).toEqual(
    open.map((u) => u.uploadId),
  );
  return { killed: worker, upload: open[0]! };
}

/** The backup's data: the manifest's exact counts equal the live database's; the stored bytes hash to the manifest. */
async function checkBackupData(backupId: string) {
  const manifest = await loadManifest(store, backupId);
  const live = await rowCounts(config, db, [...manifest.tables]);
  expect(Object.fromEntries(manifest.tables.map((t) => [`${t.schema}.${t.table}`, t.rows]))).toEqual(live);
  const h = createHash('sha256');
  for await (const chunk of await store.get(backupFileKey(db, backupId, manifest.file)))
    h.update(chunk as Buffer);
  expect(h.digest('hex')).toBe(manifest.sha256);
  expect(live['public.noise']).toBe(NOISE_MIB * 1024);
  return manifest;
}

/** Objects of the database: folder → file names. */
async function folders(): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const o of await store.list(`${db}/`)) {
    const [, folder, file] = o.key.split('/');
    if (file) (out[folder!] ??= []).push(file);
  }
  return out;
}

let backupA: string;
let survivor: WorkerProcess;

it('two workers, the dumping one killed mid-upload: the other completes it, exactly once', async () => {
  const watch = watchStore(store, db);
  const handle = await startDrillBackup();
  const { killed, upload } = await killMidUpload(pair);
  const killedAt = Date.now();
  survivor = pair.find((w) => w !== killed)!;
  const result = await handle.result();
  const seen = await watch.stop();
  const afterS = ((Date.now() - killedAt) / 1000).toFixed(0);
  step(`backup ${result.backupId} done by the survivor ${afterS} s after the kill`);

  expect(await openMultipartUploads(config.storage)).toEqual([]);
  const dump = await dumpActivityOf(handle);
  expect([dump.scheduled, dump.completed, dump.attempt >= 2]).toEqual([1, 1, true]);
  expect(dump.identity.startsWith(`${survivor.pid}@`)).toBe(true);
  expect(seen.violations).toEqual([]);
  expect(seen.latest).toEqual([undefined, result.backupId]);
  const manifest = await checkBackupData(result.backupId);
  // Exactly once: one folder holding one archive and one manifest.
  expect(await folders()).toEqual({ [result.backupId]: [manifest.file, MANIFEST_FILE].sort() });
  // The killed attempt left no scratch folder either (only the directory format makes one).
  expect((await readdir(os.tmpdir())).filter((f) => f.startsWith(`dbops-dump-${db}_`))).toEqual([]);
  backupA = result.backupId;
  recordDrill({
    drill: '1. two workers, one SIGKILLed mid-dump (S3)',
    fault: `two workers; SIGKILL to the one running pg_dump (+pg_dump, zstd), its multipart upload open (${upload.partBytes} B in parts)`,
    dataCheck: `${seen.polls} listings: no partial object, no latest before the manifest; open uploads after: 0; ${manifest.tables.length} tables' counts = live; object SHA-256 = manifest`,
    outcome: `the other worker finished it (attempt ${dump.attempt}, ${afterS} s after the kill): one folder, one archive, one manifest; killed upload aborted`,
  });
}, 90_000);

it('the only worker killed mid-upload: a new worker finishes it; no partial object, no early latest, no open upload', async () => {
  expect(backupA).toBeDefined();
  const watch = watchStore(store, db);
  const handle = await startDrillBackup();
  // The new worker starts once the dump runs on the only one, so it cannot take the dump but by
  // the retry; its start-up overlaps the wait for the kill to be noticed.
  let starting: Promise<WorkerProcess> | undefined;
  const { upload } = await killMidUpload([survivor], () => {
    starting = startWorker();
  });
  const killedAt = Date.now();
  const fresh = await starting!;
  step('new worker polling');
  const result = await handle.result();
  const seen = await watch.stop();
  const afterS = ((Date.now() - killedAt) / 1000).toFixed(0);
  step(`backup ${result.backupId} done by the new worker ${afterS} s after the kill`);

  expect(await openMultipartUploads(config.storage)).toEqual([]);
  const dump = await dumpActivityOf(handle);
  expect([dump.scheduled, dump.completed, dump.attempt >= 2]).toEqual([1, 1, true]);
  expect(dump.identity.startsWith(`${fresh.pid}@`)).toBe(true);
  expect(seen.violations).toEqual([]);
  expect(seen.latest).toEqual([backupA, result.backupId]);
  const manifest = await checkBackupData(result.backupId);
  const entries = await listBackupEntries(store, db);
  expect(entries.map((e) => [e.id, e.complete])).toEqual([
    [backupA, true],
    [result.backupId, true],
  ]);
  expect((await folders())[result.backupId]).toEqual([manifest.file, MANIFEST_FILE].sort());
  recordDrill({
    drill: '1. only worker SIGKILLed mid-dump (S3)',
    fault: `SIGKILL to the only worker with its multipart upload open (${upload.partBytes} B in parts); a new worker started`,
    dataCheck: `${seen.polls} listings: no partial object; latest stayed ${backupA} until the new manifest; open uploads after: 0; counts and SHA-256 = manifest`,
    outcome: `the new worker finished it on attempt ${dump.attempt}, ${afterS} s after the kill; the killed attempt's upload aborted`,
  });
}, 90_000);
