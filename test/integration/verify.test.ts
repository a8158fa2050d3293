import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackupStore, listBackupEntries } from '../../activities/storage';
import { type BackupManifest, backupStatus, makeBackupId } from '../../common/backup';
import { failureTypeOf, rootMessage } from '../../common/failures';
import { verifyWorkflowId } from '../../common/ids';
import type { VerifyWorkflowResult } from '../../common/restore';
import type { verifyBackupWorkflow } from '../../workflows/verify';
import { testConfig, uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import { databasesLike, dropDatabasesLike, populate, takeBackup } from './restore-fixtures';

const suffix = uniqueSuffix();
const db = `t_verify_${suffix}`;
const backupDir = path.join(os.tmpdir(), `t_verify_${suffix}`);
const config = testConfig({ DBOPS_TASK_QUEUE: `test-verify-${suffix}`, DBOPS_BACKUP_DIR: backupDir });
let tw: TestWorker;
let backupId: string;

const verify = (id: string) =>
  tw.client.workflow.execute<typeof verifyBackupWorkflow>('verifyBackupWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId: verifyWorkflowId(id),
    args: [{ backupId: id, maximumAttempts: 1 }],
  });

async function statuses(): Promise<Record<string, string>> {
  const store = createBackupStore(config.storage);
  try {
    return Object.fromEntries((await listBackupEntries(store, db)).map((e) => [e.id, backupStatus(e)]));
  } finally {
    await store.close();
  }
}

beforeAll(async () => {
  await populate(config, db, 5000);
  tw = await startTestWorker(config);
  backupId = (await takeBackup(tw.client, config, db)).backupId;
}, 120_000);

afterAll(async () => {
  await tw?.stop();
  await dropDatabasesLike(config, db);
  await rm(backupDir, { recursive: true, force: true });
});

describe('backup verification by a real restore', () => {
  it('passes for a good backup, records verified, leaves no scratch database', async () => {
    const r: VerifyWorkflowResult = await verify(backupId);
    expect(r.status).toBe('passed');
    expect(r.scratchDatabase).toMatch(new RegExp(`^${db}__verify_\\d{14}$`));
    expect(r.detail).toMatch(/exact row counts/);
    expect((await statuses())[backupId]).toBe('verified');
    expect(await databasesLike(config, `${db}__verify_`)).toEqual([]);
  });

  it('fails for a backup whose data does not match its manifest, records failed, leaves no scratch database', async () => {
    const manifest = JSON.parse(
      await readFile(path.join(backupDir, db, backupId, 'manifest.json'), 'utf8'),
    ) as BackupManifest;
    const id = makeBackupId(db, new Date(Date.UTC(2020, 0, 1)));
    await cp(path.join(backupDir, db, backupId), path.join(backupDir, db, id), { recursive: true });
    await rm(path.join(backupDir, db, id, 'verification.json'), { force: true });
    const tables = manifest.tables.map((t) => (t.table === 'users' ? { ...t, rows: t.rows + 1 } : t));
    await writeFile(
      path.join(backupDir, db, id, 'manifest.json'),
      JSON.stringify({ ...manifest, id, tables }),
    );

    const err = await verify(id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(failureTypeOf(err)).toBe('VerificationFailed');
    expect(rootMessage(err)).toMatch(/table public\.users has 5000 rows, the backup had 5001/);
    expect((await statuses())[id]).toBe('verification-failed');
    expect(await databasesLike(config, `${db}__verify_`)).toEqual([]);
  });

  it('a backup with verify on starts its verification, which records the result', async () => {
    const id = (await takeBackup(tw.client, config, db, true)).backupId;
    const r: VerifyWorkflowResult = await tw.client.workflow.getHandle(verifyWorkflowId(id)).result();
    expect(r.status).toBe('passed');
    expect((await statuses())[id]).toBe('verified');
    expect(await databasesLike(config, `${db}__verify_`)).toEqual([]);
  });
});
