import { truncate, readFile, writeFile, rm, cp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgClientConfig } from '../../activities/postgres/connection';
import { type BackupManifest, makeBackupId } from '../../common/backup';
import { failureTypeOf, rootMessage } from '../../common/failures';
import { restoreRollbackWorkflowId, restoreWorkflowId } from '../../common/ids';
import {
  type RestoreResult,
  type RestoreStatus,
  type RestoreWorkflowInput,
  parsePreRestoreComment,
  type RollbackResult,
} from '../../common/restore';
import {
  restoreApprovalSignal,
  restoreApprovalUpdate,
  restoreStatusQuery,
} from '../../workflows/restore-messages';
import { testConfig, uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import {
  databasesLike,
  dropDatabasesLike,
  fingerprint,
  populate,
  sql,
  takeBackup,
  waitFor,
} from './restore-fixtures';

const suffix = uniqueSuffix();
const db = `t_restore_${suffix}`;
const backupDir = path.join(os.tmpdir(), `t_restore_${suffix}`);
const config = testConfig({
  DBOPS_TASK_QUEUE: `test-restore-${suffix}`,
  DBOPS_BACKUP_DIR: backupDir,
  DBOPS_DATABASES: db,
});
let tw: TestWorker;
let backupId: string;
let original: Record<string, string>;
let seq = 0;

function input(extra: Partial<RestoreWorkflowInput> = {}): RestoreWorkflowInput {
  return {
    backup: backupId,
    requestedBy: 'alice',
    approvalTimeoutMs: 10 * 60_000,
    fourEyes: true,
    keepDays: 7,
    jobs: 2,
    maximumAttempts: 2,
    ...extra,
  };
}

async function start(extra: Partial<RestoreWorkflowInput> = {}) {
  return tw.client.workflow.start('restoreWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId: `${restoreWorkflowId(db, new Date())}-${seq++}`,
    args: [input(extra)],
  });
}

async function awaitingApproval(handle: Awaited<ReturnType<typeof start>>): Promise<RestoreStatus> {
  return waitFor('awaiting-approval', async () => {
    const s = await handle.query(restoreStatusQuery);
    return s.phase === 'awaiting-approval' ? s : undefined;
  });
}

beforeAll(async () => {
  await populate(config, db);
  original = await fingerprint(config, db);
  tw = await startTestWorker(config);
  backupId = (await takeBackup(tw.client, config, db)).backupId;
}, 120_000);

afterAll(async () => {
  await tw?.stop();
  await dropDatabasesLike(config, db);
  await rm(backupDir, { recursive: true, force: true });
});

describe('restore workflow', () => {
  it('dry run returns the plan and changes nothing', async () => {
    const handle = await start({ dryRun: true });
    const result: RestoreResult = await handle.result();
    expect(result.outcome).toBe('dry-run');
    expect(result.plan.backupId).toBe(backupId);
    expect(result.plan.targetExists).toBe(true);
    expect(result.plan.extensions).toContain('pg_trgm');
    expect(result.plan.steps.join('\n')).toMatch(/rename .*__pre_restore_/);
    expect(result.planHash).toMatch(/^[0-9a-f]{64}$/);
    expect(await databasesLike(config, db)).toEqual([db]);
  });

  it('round trip: approved restore brings back the backup, keeps the old database, disconnects clients, rolls back', async () => {
    await sql(
      config,
      db,
      "DELETE FROM events WHERE kind = 'k1'; INSERT INTO users VALUES (999999, 'new@example.com', 'changed')",
    );
    const changed = await fingerprint(config, db);
    expect(changed).not.toEqual(original);

    const handle = await start();
    const status = await awaitingApproval(handle);
    expect(status.plan?.target).toBe(db);
    const hash = status.planHash!;
    // Validator refusals: wrong hash, four-eyes.
    await expect(
      handle.executeUpdate(restoreApprovalUpdate, {
        args: [{ decision: 'approve', by: 'bob', planHash: 'f00' }],
      }),
    ).rejects.toThrow(WorkflowUpdateFailedError);
    const fourEyes = await handle
      .executeUpdate(restoreApprovalUpdate, { args: [{ decision: 'approve', by: 'Alice', planHash: hash }] })
      .catch((e: unknown) => e as Error);
    expect(fourEyes).toBeInstanceOf(WorkflowUpdateFailedError);
    expect(rootMessage(fourEyes)).toMatch(/four-eyes/);

    // A client connected to the target during cut-over.
    const app = new Client(pgClientConfig(config.pg, db));
    await app.connect();
    let appError: Error | undefined;
    app.on('error', (e) => (appError = e));

    const record = await handle.executeUpdate(restoreApprovalUpdate, {
      args: [{ decision: 'approve', by: 'bob', comment: 'incident 42', planHash: hash }],
    });
    expect(record).toMatchObject({ decision: 'approve', by: 'bob', via: 'update' });
    await expect(
      handle.executeUpdate(restoreApprovalUpdate, {
        args: [{ decision: 'reject', by: 'carol', planHash: hash }],
      }),
    ).rejects.toThrow(WorkflowUpdateFailedError);

    const result: RestoreResult = await handle.result();
    expect(result.outcome).toBe('restored');
    expect(result.approval).toMatchObject({ by: 'bob', comment: 'incident 42' });
    expect(result.cutoverMs).toBeGreaterThanOrEqual(0);
    expect(result.cutoverMs).toBeLessThan(2000);
    console.log(`restore cut-over window: ${result.cutoverMs} ms, total ${result.durationMs} ms`);
    expect(await fingerprint(config, db)).toEqual(original);
    // The planner statistics came with the archive (PostgreSQL 18): present, yet never ANALYZEd here.
    const [stats] = await sql<{ columns: number; analyzed: string | null }>(
      config,
      db,
      `SELECT (SELECT count(*)::int FROM pg_stats WHERE schemaname = 'public' AND tablename = 'users') AS columns,
              (SELECT last_analyze::text FROM pg_stat_user_tables WHERE relname = 'users') AS analyzed`,
    );
    expect(stats).toEqual({ columns: 3, analyzed: null });
    const pre = result.preRestoreDatabase!;
    expect(pre).toMatch(new RegExp(`^${db}__pre_restore_\\d{14}$`));
    expect(await fingerprint(config, pre)).toEqual(changed);
    const [comment] = await sql<{ c: string }>(
      config,
      undefined,
      "SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = $1",
      [pre],
    );
    expect(parsePreRestoreComment(comment!.c)).toMatchObject({
      dbops: 'pre_restore',
      target: db,
      workflowId: handle.workflowId,
    });
    expect((await databasesLike(config, `${db}__restore_`)).length).toBe(0);

    // The old session was terminated; a new one sees the restored data.
    await expect(app.query('SELECT 1')).rejects.toThrow();
    expect(appError ?? true).toBeTruthy();
    await app.end().catch(() => undefined);
    const again = new Client(pgClientConfig(config.pg, db));
    await again.connect();
    expect(
      (await again.query("SELECT count(*)::int AS n FROM users WHERE email = 'new@example.com'")).rows[0].n,
    ).toBe(0);
    await again.end();

    const rollback: RollbackResult = await tw.client.workflow.execute('restoreRollbackWorkflow', {
      taskQueue: config.temporal.taskQueue,
      workflowId: restoreRollbackWorkflowId(handle.workflowId),
      args: [{ target: db, preRestoreDatabase: pre, restoreWorkflowId: handle.workflowId, keepDays: 7 }],
    });
    expect(await fingerprint(config, db)).toEqual(changed);
    expect(await fingerprint(config, rollback.replacedKeptAs)).toEqual(original);
    expect(await databasesLike(config, pre)).toEqual([]);
  });

  it('rejection (signal) changes nothing', async () => {
    const before = await fingerprint(config, db);
    const handle = await start();
    const status = await awaitingApproval(handle);
    await handle.signal(restoreApprovalSignal, {
      decision: 'reject',
      by: 'bob',
      comment: 'not now',
      planHash: status.planHash!,
    });
    const result: RestoreResult = await handle.result();
    expect(result.outcome).toBe('rejected');
    expect(result.approval).toMatchObject({ decision: 'reject', by: 'bob', via: 'signal' });
    expect(await fingerprint(config, db)).toEqual(before);
    expect((await databasesLike(config, `${db}__restore_`)).length).toBe(0);
  });

  it('a corrupted or truncated backup is refused before approval is asked', async () => {
    const manifest = JSON.parse(
      await readFile(path.join(backupDir, db, backupId, 'manifest.json'), 'utf8'),
    ) as BackupManifest;
    for (const [n, damage] of [
      [1, (f: string) => truncate(f, manifest.sizeBytes - 100)],
      [
        2,
        async (f: string) => {
          const buf = await readFile(f);
          const i = Math.floor(buf.length / 2);
          buf[i] = buf[i]! ^ 0xff;
          await writeFile(f, buf);
        },
      ],
      [
        3,
        // The archive decompresses fine but is not the one the manifest describes: only SHA-256 tells.
        async (f: string) => {
          const m = path.join(path.dirname(f), 'manifest.json');
          const replaced = JSON.parse(await readFile(m, 'utf8')) as BackupManifest;
          await writeFile(m, JSON.stringify({ ...replaced, sha256: '0'.repeat(64) }));
        },
      ],
    ] as const) {
      const id = makeBackupId(db, new Date(Date.UTC(2020, 0, n)));
      await cp(path.join(backupDir, db, backupId), path.join(backupDir, db, id), { recursive: true });
      await writeFile(path.join(backupDir, db, id, 'manifest.json'), JSON.stringify({ ...manifest, id }));
      await damage(path.join(backupDir, db, id, manifest.file));
      const handle = await start({ backup: id });
      const err = await handle.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect(failureTypeOf(err)).toBe('IntegrityCheckFailed');
      if (n === 3) expect(rootMessage(err)).toContain('SHA-256');
      const status = await handle.query(restoreStatusQuery);
      expect(status.waitingSince).toBeNull();
    }
  });

  it('unknown id lists the nearest; hostile names are refused before anything runs', async () => {
    const unknown = makeBackupId(db, new Date(Date.UTC(2030, 0, 1)));
    const err = await (await start({ backup: unknown })).result().catch((e: unknown) => e as Error);
    expect(failureTypeOf(err)).toBe('NotFound');
    expect(rootMessage(err)).toContain(backupId);
    for (const bad of [
      { target: '"; DROP DATABASE postgres; --' },
      { backup: '../x' },
      { target: `${'x'.repeat(40)}` },
    ]) {
      const e = await (await start(bad)).result().catch((x: unknown) => x as Error);
      expect(failureTypeOf(e)).toBe('InvalidInput');
    }
    expect(await databasesLike(config, db)).toContain(db);
  });
});
