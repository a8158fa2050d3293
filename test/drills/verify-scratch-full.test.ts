/**
 * Drill 8 (scratch space full): the verification's scratch folder (DBOPS_SCRATCH_DIR) is a small
 * tmpfs of its own. Full before a verification, the space check refuses; filled by another process
 * after that check (the failpoint restore.before-decompress holds the restore there), zstd runs
 * out of space. Neither is a verdict on the backup: "could not verify", or a later round passes;
 * the backup's record stays as it was and no scratch file is left behind.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, rm, rmdir, statfs, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client, Connection, WorkflowHandle } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { listBackupEntries, type BackupStore } from '../../activities/storage';
import { type BackupManifest, backupStatus, isGoodBackup, manifestKey } from '../../common/backup';
import { failureTypeOf, rootMessage } from '../../common/failures';
import type { VerifyWorkflowInput, VerifyWorkflowResult } from '../../common/restore';
import type { verifyBackupWorkflow } from '../../workflows/verify';
import { testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import {
  dropDatabasesLike,
  fingerprint,
  populate,
  takeBackup,
  waitFor,
} from '../integration/restore-fixtures';
import { recordDrill, stepLogger } from './kit/report';
import { closeSession, drillEnv, openSession } from './kit/session';
import { startWorkerProcess, type WorkerProcess } from './kit/worker-process';

const suffix = uniqueSuffix();
const db = `t_drill8s_${suffix}`;
const queue = `drill8s-${suffix}`;
const scratchDir = path.join(os.tmpdir(), `t_drill8s_${suffix}`);
const backupDir = path.join(testRun().backupDir, `drill8s-${suffix}`);
const env = { ...drillEnv(queue, backupDir), DBOPS_SCRATCH_DIR: scratchDir };
const config = testConfig(env);
const TMPFS_MIB = 48;
const PAUSE_MS = 3000;
const ballast = path.join(scratchDir, 'ballast');

let worker: WorkerProcess;
let connection: Connection;
let client: Client;
let store: BackupStore;
let mounted = false;
const step = stepLogger('drill 8s');

function mountTmpfs(): void {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_MIB}m,mode=0755`, 'tmpfs', scratchDir], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim();
    throw new Error(
      `drill 8 cannot mount a ${TMPFS_MIB} MiB tmpfs at ${scratchDir} (${stderr}): it needs root with CAP_SYS_ADMIN`,
    );
  }
  mounted = true;
}

let runs = 0;
function startVerify(backupId: string, extra: Partial<VerifyWorkflowInput> = {}) {
  return client.workflow.start<typeof verifyBackupWorkflow>('verifyBackupWorkflow', {
    taskQueue: queue,
    workflowId: `drill8s-verify-${suffix}-${++runs}`,
    args: [{ backupId, maximumAttempts: 1, rounds: 2, roundDelayMs: 500, ...extra }],
  });
}

/** Fills the tmpfs but `leaveBytes` with a ballast file (another process's data). */
async function fillScratch(leaveBytes: number): Promise<number> {
  const { bavail, bsize } = await statfs(scratchDir);
  const size = Math.max(0, bavail * bsize - leaveBytes);
  await writeFile(ballast, Buffer.alloc(size));
  return size;
}

/** Everything in the scratch folder but the ballast. */
const leftovers = async () =>
  (await readdir(scratchDir, { recursive: true })).filter((f) => f !== 'ballast').sort();

const recordFile = (backupId: string) => path.join(backupDir, db, backupId, 'verification.json');

async function standing(backupId: string) {
  const entries = await listBackupEntries(store, db);
  return {
    status: backupStatus(entries.find((e) => e.id === backupId)!),
    good: entries.filter(isGoodBackup).map((e) => e.id),
  };
}

async function history(handle: WorkflowHandle) {
  const events = (await handle.fetchHistory()).events ?? [];
  return {
    timers: events.filter((e) => e.timerStartedEventAttributes).length,
    failures: events
      .map((e) => e.activityTaskFailedEventAttributes?.failure)
      .filter((f) => f)
      .map((f) => ({ type: f!.applicationFailureInfo?.type ?? '', message: f!.message ?? '' })),
  };
}

beforeAll(async () => {
  await mkdir(scratchDir, { recursive: true });
  mountTmpfs();
  [worker] = await Promise.all([
    startWorkerProcess({ ...env, DBOPS_FAILPOINTS: `restore.before-decompress=pause:${PAUSE_MS}` }),
    populate(config, db, 20_000),
  ]);
  ({ client, connection, store } = await openSession(config));
  step(`tmpfs of ${TMPFS_MIB} MiB at ${scratchDir}, database and worker ready`);
}, 120_000);

afterAll(async () => {
  await closeSession({ connection, store });
  if (mounted) execFileSync('umount', [scratchDir]);
  await rmdir(scratchDir).catch(() => undefined);
  await dropDatabasesLike(config, db);
  await rm(backupDir, { recursive: true, force: true });
});

it('8. scratch space full during verification: could not verify, retried later, the record untouched', async () => {
  const rows = await fingerprint(config, db);
  const { backupId } = await takeBackup(client, config, db);
  const manifest = (await store.getJson<BackupManifest>(manifestKey(db, backupId)))!;
  const first: VerifyWorkflowResult = await (await startVerify(backupId)).result();
  expect(first.status).toBe('passed');
  const record = await readFile(recordFile(backupId), 'utf8');
  const before = await standing(backupId);
  expect(before).toEqual({ status: 'verified', good: [backupId] });
  step(`${backupId} verified (${manifest.rawBytes} raw bytes)`);

  // Full before the verification: the space check refuses every round.
  await fillScratch(Math.floor(manifest.rawBytes / 2));
  const refused = await (await startVerify(backupId)).result().then(
    () => undefined,
    (e: unknown) => e,
  );
  step(`scratch full: ${rootMessage(refused)}`);
  expect(refused).toBeInstanceOf(WorkflowFailedError);
  expect(failureTypeOf(refused)).toBe('Unavailable');
  expect(rootMessage(refused)).toMatch(
    new RegExp(
      `^could not verify backup ${backupId}: 2 test restores .*; last: scratch folder ${scratchDir} has`,
    ),
  );
  expect(await readFile(recordFile(backupId), 'utf8')).toBe(record);
  expect(await standing(backupId)).toEqual(before);
  expect(await leftovers()).toEqual([]);
  await rm(ballast);

  // Filled by someone else after the check, while the archive is being decompressed: zstd runs out
  // of space in round 1; the space is freed before round 2, which passes.
  const later = await startVerify(backupId, { roundDelayMs: 4000 });
  await worker.waitForLog(/(dbops failpoint restore\.before-decompress[\s\S]*){2}/, 60_000);
  const filled = await fillScratch(0);
  step(`scratch folder filled with ${filled} bytes after the space check`);
  await waitFor(
    'round 1 to end',
    async () => (await history(later)).timers > 0 || (await later.describe()).status.name !== 'RUNNING',
  );
  expect(await readFile(recordFile(backupId), 'utf8')).toBe(record);
  expect(await leftovers()).toEqual([]);
  const round1 = await history(later);
  const enospc = round1.failures.find((f) => f.message.startsWith('zstd -d'));
  expect(enospc?.type).toBe('Unavailable');
  expect(enospc!.message).toMatch(/No space left on device/);
  await rm(ballast);
  step(`round 1: ${enospc!.message.slice(0, 200)}; ballast removed`);
  const passed: VerifyWorkflowResult = await later.result();
  expect(passed.status).toBe('passed');
  expect((await history(later)).timers).toBe(1);
  expect(await standing(backupId)).toEqual(before);
  expect(await leftovers()).toEqual([]);
  expect(await fingerprint(config, db)).toEqual(rows);

  recordDrill({
    drill: '8. verify: scratch space full',
    fault: `DBOPS_SCRATCH_DIR a ${TMPFS_MIB} MiB tmpfs: filled to half the ${manifest.rawBytes}-byte raw archive; then filled up after the space check (failpoint restore.before-decompress)`,
    dataCheck:
      'verification.json byte-identical after both faults; status verified, retention good set [it]; no file left in the scratch folder',
    outcome: `full: refused by the space check, "could not verify" after 2 rounds; filled mid-restore: zstd ENOSPC → Unavailable, round 2 passed once freed`,
  });
});
