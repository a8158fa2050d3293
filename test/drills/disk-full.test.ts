/**
 * Drill 10: the local backup folder is a small tmpfs of its own. A worker SIGKILLed mid-write
 * leaves its temporary file; the operator terminates that backup (so no cleanup of its own runs);
 * a day later the next backup of the database sweeps the leftover. Then the filesystem is filled
 * (a ballast file) and a backup must fail at once with a message naming the folder, leave no
 * partial file, and leave the earlier backups byte for byte as they were.
 *
 * Where leftovers go (the product's rule, activities/postgres/dump/session.ts): every dump attempt
 * first sweeps its own backup folder (a retry after a kill; drill 1 proves that on S3), the
 * workflow's failure path sweeps it too, and leftovers in the database's other folders go with its
 * next backup once they are a day old. The day is simulated by back-dating the leftover's mtime.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, rm, rmdir, stat, statfs, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client, Connection, WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createBackupStore, listBackupEntries, type BackupStore } from '../../activities/storage';
import { latestKey, type LatestPointer } from '../../common/backup';
import { rootMessage } from '../../common/failures';
import { backupWorkflowArgs } from '../../src/client/backup';
import { connectClient } from '../../src/client/connection';
import type { backupWorkflow } from '../../workflows/backup';
import { testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { createPopulatedDatabase, dropDatabase } from '../integration/backup-helpers';
import { addIncompressibleTable, dumpActivityOf, holdDumpWhen } from './kit/dump-control';
import { waitForTool } from './kit/process-group';
import { recordDrill, stepLogger } from './kit/report';
import { watchStore } from './kit/store-watch';
import { killAllWorkerProcesses, startWorkerProcess, type WorkerProcess } from './kit/worker-process';

const suffix = uniqueSuffix();
const small = `t_drill_full_s_${suffix}`;
const big = `t_drill_full_b_${suffix}`;
const queue = `drill-full-${suffix}`;
const mount = path.join(os.tmpdir(), `t_drill_full_${suffix}`);
const TMPFS_MIB = 32;
/** The big database's archive: ~8 MiB of random bytes, more than the space left in the end. */
const NOISE_MIB = 8;
const config = testConfig({ DBOPS_TASK_QUEUE: queue, DBOPS_BACKUP_DIR: mount, DBOPS_DATABASES: big });
const logDir = path.dirname(testRun().backupDir);
const TEMP_MARK = '.tmp-';

let client: Client;
let connection: Connection;
let store: BackupStore;
let mounted = false;
let workers = 0;
const step = stepLogger('drill 10');

function startWorker(): Promise<WorkerProcess> {
  return startWorkerProcess(
    {
      DBOPS_TASK_QUEUE: queue,
      DBOPS_TEMPORAL_NAMESPACE: testRun().namespace,
      DBOPS_STORAGE: 'local',
      DBOPS_BACKUP_DIR: mount,
    },
    { logFile: path.join(logDir, `drill-full-${suffix}-worker${++workers}.log`) },
  );
}

function mountTmpfs(): void {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_MIB}m,mode=0755`, 'tmpfs', mount], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim();
    throw new Error(
      `drill 10 cannot mount a ${TMPFS_MIB} MiB tmpfs at ${mount} (${stderr}): it needs root with CAP_SYS_ADMIN (a container started with --privileged or --cap-add SYS_ADMIN)`,
    );
  }
  mounted = true;
}

let first: WorkerProcess;
beforeAll(async () => {
  await mkdir(mount, { recursive: true });
  mountTmpfs();
  [first] = await Promise.all([
    startWorker(),
    createPopulatedDatabase(config, small, 5_000),
    (async () => {
      await createPopulatedDatabase(config, big, 2_000);
      await addIncompressibleTable(config, big, NOISE_MIB);
    })(),
  ]);
  ({ client, connection } = await connectClient(config));
  store = createBackupStore(config.storage);
  step(`tmpfs of ${TMPFS_MIB} MiB at ${mount}, databases and worker ready`);
}, 120_000);

afterAll(async () => {
  await killAllWorkerProcesses();
  await connection?.close();
  await store?.close();
  if (mounted) {
    // The workers and their children are killed, so nothing holds the folder; should something
    // still (a failed run), detach it lazily rather than leave it mounted.
    try {
      execFileSync('umount', [mount]);
    } catch {
      execFileSync('umount', ['-l', mount]);
    }
  }
  await rmdir(mount).catch(() => undefined);
  await dropDatabase(config, small);
  await dropDatabase(config, big);
});

let n = 0;
function startDrillBackup(database: string): Promise<WorkflowHandle<typeof backupWorkflow>> {
  return client.workflow.start<typeof backupWorkflow>('backupWorkflow', {
    taskQueue: queue,
    workflowId: `drill-full-${suffix}-${++n}`,
    args: [{ ...backupWorkflowArgs(config, database, 'manual'), prune: false }],
  });
}

/** Every file under the tmpfs (relative path → size), temporary ones included. */
async function files(dir = mount, rel = ''): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const d of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) Object.assign(out, await files(p, `${rel}${d.name}/`));
    else out[`${rel}${d.name}`] = (await stat(p)).size;
  }
  return out;
}

const temps = async () => Object.keys(await files()).filter((f) => f.includes(TEMP_MARK));

/** SHA-256 of every stored file of the databases (the ballast excluded). */
async function checksums(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of Object.keys(await files()).filter((f) => f.includes('/'))) {
    out[f] = createHash('sha256')
      .update(readFileSync(path.join(mount, f)))
      .digest('hex');
  }
  return out;
}

let leftover: string;
let bigBackup: string;

it('a worker killed mid-write leaves a temporary file; the next backup a day later sweeps it', async () => {
  const smallResult = await (await startDrillBackup(small)).result();
  step(`earlier backup ${smallResult.backupId}`);

  const killedRun = await startDrillBackup(big);
  const { pid } = await waitForTool([first], 'pg_dump');
  await holdDumpWhen(pid, async () => {
    const t = await temps();
    return t.length === 1 && ((await files())[t[0]!] ?? 0) > 0;
  });
  first.kill();
  await first.exited;
  leftover = (await temps())[0]!;
  const leftoverBytes = (await files())[leftover]!;
  step(`killed the worker with ${leftover} at ${leftoverBytes} bytes`);
  await killedRun.terminate('drill 10: the operator gives up on the backup of the killed worker');
  expect(await listBackupEntries(store, big)).toEqual([]); // a temporary file is never listed

  // A day later (back-dated: the rule is about age), the next backup of the database sweeps it.
  const dayAgo = new Date(Date.now() - 25 * 3600_000);
  await utimes(path.join(mount, leftover), dayAgo, dayAgo);
  const second = await startWorker();
  const next = await (await startDrillBackup(big)).result();
  bigBackup = next.backupId;
  step(`next backup ${next.backupId} done`);
  expect(await temps()).toEqual([]);
  expect(second.log()).toContain('removed interrupted writes of killed backup attempts');
  expect((await listBackupEntries(store, big)).map((e) => [e.id, e.complete])).toEqual([
    [next.backupId, true],
  ]);
  recordDrill({
    drill: '10. killed write swept',
    fault: `SIGKILL to the worker mid-write on a ${TMPFS_MIB} MiB tmpfs, backup terminated, leftover back-dated 25 h`,
    dataCheck: `${leftover.split('/').pop()} (${leftoverBytes} B) never listed; after the next backup: 0 temporary files`,
    outcome: `the next backup (${next.sizeBytes} B) swept the leftover and completed`,
  });
}, 90_000);

it('a full backup folder: a clear failure naming it, no partial file, earlier backups untouched', async () => {
  expect(bigBackup).toBeDefined();
  const before = await checksums();
  const latestBefore = await store.getJson<LatestPointer>(latestKey(big));
  // Fill the filesystem but 2 MiB: less than the big database's archive.
  const { bavail, bsize } = await statfs(mount);
  const ballast = path.join(mount, 'ballast');
  await writeFile(ballast, Buffer.alloc(Math.max(0, bavail * bsize - 2 * 1024 * 1024)));
  const watch = watchStore(store, big);
  const started = Date.now();
  const handle = await startDrillBackup(big);
  const failed = await handle.result().then(
    () => undefined,
    (err: unknown) => rootMessage(err),
  );
  const seen = await watch.stop();
  const tookS = ((Date.now() - started) / 1000).toFixed(1);
  step(`backup failed after ${tookS} s: ${failed}`);
  expect(failed).toContain(`backup folder ${mount} is full (ENOSPC`);
  // Not retried: a full folder does not empty itself, and each retry would dump the database again.
  expect(await dumpActivityOf(handle)).toMatchObject({ scheduled: 1, attempt: 1, failed: 1 });
  expect(await temps()).toEqual([]);
  expect(
    Object.keys(await files()).filter(
      (f) => f.startsWith(`${big}/`) && !f.startsWith(`${big}/${bigBackup}/`),
    ),
  ).toEqual([`${big}/latest.json`]);
  expect(await checksums()).toEqual(before);
  expect(await store.getJson<LatestPointer>(latestKey(big))).toEqual(latestBefore);
  expect(seen.violations).toEqual([]);
  await rm(ballast);
  recordDrill({
    drill: '10. backup folder full',
    fault: `${TMPFS_MIB} MiB tmpfs filled to 2 MiB free by a ballast file; backup of a ~${NOISE_MIB} MiB archive`,
    dataCheck: `${Object.keys(before).length} earlier files: SHA-256 before = after; latest unchanged; 0 partial or temporary files`,
    outcome: `failed in ${tookS} s, not retried: "${failed!.slice(0, 90)}…"`,
  });
}, 90_000);
