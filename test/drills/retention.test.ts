/**
 * Drill 7: retention after 45 days of back-dated backups whose last 40 failed, and a backup that a
 * restore waiting for approval holds. The real backup workflow prunes (its pruneBackups activity)
 * against the dev stack's S3 server with real objects; the assertions are about the objects that
 * remain in the bucket.
 */
import { createHash } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createBackupStore, type BackupStore } from '../../activities/storage';
import type { PruneResult } from '../../activities/storage';
import {
  type BackupHold,
  type BackupManifest,
  type BackupVerification,
  type BackupWorkflowResult,
  backupFileKey,
  backupFolderKey,
  holdsKey,
  makeBackupId,
  manifestKey,
  verificationKey,
} from '../../common/backup';
import type { RestoreResult, RestoreStatus } from '../../common/restore';
import type { backupWorkflow } from '../../workflows/backup';
import { HOLD_MARGIN_MS } from '../../workflows/backup-hold';
import type { restoreWorkflow } from '../../workflows/restore';
import { restoreApprovalUpdate, restoreStatusQuery } from '../../workflows/restore-messages';
import { dropDatabasesLike, populate, takeBackup, waitFor } from '../integration/restore-fixtures';
import { s3Overrides, testConfig, uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import { recordDrill } from './kit/report';

const DAY = 86_400_000;
const suffix = uniqueSuffix();
const db = `t_drill7_${suffix}`;
const config = testConfig({
  DBOPS_TASK_QUEUE: `drill7-${suffix}`,
  ...s3Overrides(`drill7-${suffix}`),
  DBOPS_RETENTION_DAYS: '30',
  DBOPS_RETENTION_MIN_KEEP: '3',
});
let tw: TestWorker;
let store: BackupStore;
const started = Date.now();

/** Days ago → backup id, an hour off midnight-aligned boundaries so the 30-day cut-off is unambiguous. */
const idAt = (daysAgo: number) => makeBackupId(db, new Date(started - daysAgo * DAY - 3_600_000));
const GOOD_DAYS = [45, 44, 43, 42, 41];
const FAILED_DAYS = Array.from({ length: 40 }, (_, i) => 40 - i);

async function objectsOf(backupId: string): Promise<string[]> {
  return (await store.list(backupFolderKey(db, backupId))).map((o) => o.key.split('/').pop()!);
}

async function sha256Of(key: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of await store.get(key)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Copies the real backup's archive under back-dated ids: the 5 oldest days verified good, the last
 * 40 failed (even days: a dump that never got its manifest; odd days: complete, but their test
 * restore failed).
 */
async function fabricateHistory(template: BackupManifest): Promise<void> {
  const archive = backupFileKey(db, template.id, template.file);
  const write = async (daysAgo: number, kind: 'good' | 'incomplete' | 'verification-failed') => {
    const id = idAt(daysAgo);
    const at = new Date(started - daysAgo * DAY - 3_600_000).toISOString();
    await store.put(backupFileKey(db, id, template.file), await store.get(archive));
    if (kind === 'incomplete') return;
    const manifest: BackupManifest = { ...template, id, startedAt: at, finishedAt: at };
    await store.putJson(manifestKey(db, id), manifest);
    const verification: BackupVerification = {
      status: kind === 'good' ? 'passed' : 'failed',
      checkedAt: at,
      detail: kind === 'good' ? 'drill: verified' : 'drill: the test restore failed',
    };
    await store.putJson(verificationKey(db, id), verification);
  };
  for (const d of GOOD_DAYS) await write(d, 'good');
  for (const d of FAILED_DAYS) await write(d, d % 2 === 0 ? 'incomplete' : 'verification-failed');
  // Only the fabricated history: the template backup itself goes.
  for (const o of await store.list(backupFolderKey(db, template.id))) await store.delete(o.key);
}

/** A backup with retention on, through the real backup workflow (its pruneBackups activity). */
async function backupAndPrune(): Promise<{ result: BackupWorkflowResult; prune: PruneResult }> {
  const handle = await tw.client.workflow.start<typeof backupWorkflow>('backupWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId: `drill7-backup-${suffix}-${Date.now()}`,
    args: [{ database: db, trigger: 'manual', prune: true, verify: false }],
  });
  const result = await handle.result();
  return { result, prune: await activityResult<PruneResult>(handle, 'pruneBackups') };
}

/** What an activity returned, read from the workflow's history (what the Web UI shows). */
async function activityResult<T>(handle: WorkflowHandle, activity: string): Promise<T> {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = events.find(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activity,
  );
  const done = events.find(
    (e) =>
      e.activityTaskCompletedEventAttributes &&
      Number(e.activityTaskCompletedEventAttributes.scheduledEventId) === Number(scheduled?.eventId),
  );
  const data = done?.activityTaskCompletedEventAttributes?.result?.payloads?.[0]?.data;
  if (!data) throw new Error(`no completed ${activity} activity in ${handle.workflowId}`);
  return JSON.parse(Buffer.from(data).toString('utf8')) as T;
}

beforeAll(async () => {
  store = createBackupStore(config.storage);
  await populate(config, db, 2000);
  tw = await startTestWorker(config);
  const real = await takeBackup(tw.client, config, db);
  const template = await store.getJson<BackupManifest>(manifestKey(db, real.backupId));
  await fabricateHistory(template!);
}, 120_000);

afterAll(async () => {
  await tw?.stop();
  await dropDatabasesLike(config, db);
  if (store) {
    for (const o of await store.list(`${db}/`)) await store.delete(o.key);
    await store.close();
  }
});

it('7. retention keeps the newest good backups after 40 failed days, and never a backup a restore awaiting approval holds', async () => {
  const heldId = idAt(44); // verified, older than 30 days, not among the newest 3 good: retention would delete it
  const heldSha = (await store.getJson<BackupManifest>(manifestKey(db, heldId)))!.sha256;
  const restore = await tw.client.workflow.start<typeof restoreWorkflow>('restoreWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId: `drill7-restore-${suffix}`,
    args: [
      {
        backup: heldId,
        target: `${db}_tgt`,
        allowUnlistedTarget: true,
        requestedBy: 'alice',
        approvalTimeoutMs: 10 * 60_000,
        fourEyes: true,
        keepDays: 7,
        jobs: 1,
        maximumAttempts: 2,
      },
    ],
  });
  const waiting: RestoreStatus = await waitFor(
    'the restore to wait for approval',
    async () => {
      const s = await restore.query(restoreStatusQuery);
      return s.phase === 'awaiting-approval' ? s : undefined;
    },
    60_000,
  );
  const holds = await store.list(holdsKey(db, heldId));
  expect(holds).toHaveLength(1);
  const hold = (await store.getJson<BackupHold>(holds[0]!.key))!;
  expect(hold.holder).toBe(restore.workflowId);
  // A terminated restore's hold still ends: at its approval deadline plus the margin.
  expect(
    Math.abs(Date.parse(hold.expiresAt) - (Date.parse(waiting.approvalDeadline!) + HOLD_MARGIN_MS)),
  ).toBeLessThan(5_000);

  // Prune while the restore waits: the real backup workflow with retention 30 days, min-keep 3.
  const first = await backupAndPrune();
  const expectDeleted = [45, ...FAILED_DAYS.filter((d) => d >= 30)].map(idAt).sort();
  expect([...first.result.pruned].sort()).toEqual(expectDeleted);
  expect(first.prune.held.map((h) => h.id)).toEqual([heldId]);
  expect(first.prune.held[0]!.reason).toContain(`held by ${restore.workflowId}`);
  for (const id of expectDeleted) expect(await objectsOf(id)).toEqual([]);
  // The newest good ones (min-keep 3), the held one, and everything younger than 30 days remain.
  for (const d of [43, 42, 41]) expect(await objectsOf(idAt(d))).toContain('manifest.json');
  for (const d of FAILED_DAYS.filter((x) => x < 30))
    expect((await objectsOf(idAt(d))).length).toBeGreaterThan(0);
  const template = (await store.getJson<BackupManifest>(manifestKey(db, heldId)))!;
  expect(await objectsOf(heldId)).toEqual([template.file, 'manifest.json', 'verification.json'].sort());
  expect(await sha256Of(backupFileKey(db, heldId, template.file))).toBe(heldSha);

  // The restore ends (rejected): its hold is released, and the next retention deletes the backup.
  await restore.executeUpdate(restoreApprovalUpdate, {
    args: [{ decision: 'reject', by: 'bob', comment: 'drill 7', planHash: waiting.planHash! }],
  });
  const outcome: RestoreResult = await restore.result();
  expect(outcome.outcome).toBe('rejected');
  expect(await store.list(holdsKey(db))).toEqual([]);
  const second = await backupAndPrune();
  expect(second.result.pruned).toEqual([heldId]);
  expect(second.prune.held).toEqual([]);
  expect(await objectsOf(heldId)).toEqual([]);
  const remaining = new Set((await store.list(`${db}/`)).map((o) => o.key.split('/')[1]));
  for (const d of [43, 42, 41]) expect(remaining.has(idAt(d))).toBe(true);
  expect(remaining.has(first.result.backupId) && remaining.has(second.result.backupId)).toBe(true);

  recordDrill({
    drill: '7. retention, held backups',
    fault: `45 back-dated backups in S3 (5 verified, last 40 failed: 20 without manifest, 20 verification-failed); a restore of the 44-day one awaiting approval`,
    dataCheck: `objects listed per backup id in the bucket; held archive SHA-256 re-read = manifest; ${expectDeleted.length} folders gone, newest 3 good + ${FAILED_DAYS.filter((x) => x < 30).length} young ones kept`,
    outcome: `1st prune deleted ${first.result.pruned.length}, kept the held backup ("held by ${restore.workflowId}"); after the rejection the hold was gone and the 2nd prune deleted it`,
  });
});
