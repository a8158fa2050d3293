import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CreateMultipartUploadCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgClientConfig } from '../../activities/postgres/connection';
import {
  createBackupStore,
  createStorageActivities,
  listBackupEntries,
  type BackupStore,
} from '../../activities/storage';
import { backupFileKey, latestKey, makeBackupId, type LatestPointer } from '../../common/backup';
import { startBackup } from '../../src/client/backup';
import { s3Overrides, stackVars, testConfig, uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import { createPopulatedDatabase, dropDatabase } from './backup-helpers';

const suffix = uniqueSuffix();
const db = `t_backupfault_${suffix}`;
let dir: string;
let tw: TestWorker;
let minute = 0;
const nextTime = () => new Date(Date.UTC(2032, 0, 1, 0, minute++));

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 't_backupfault_'));
  const config = testConfig({
    DBOPS_TASK_QUEUE: `test-backupfault-${suffix}`,
    DBOPS_BACKUP_DIR: dir,
    DBOPS_DATABASES: db,
  });
  await createPopulatedDatabase(config, db, 300_000);
  tw = await startTestWorker(config);
}, 120_000);

afterAll(async () => {
  await tw?.stop();
  await dropDatabase(tw.config, db);
  await rm(dir, { recursive: true, force: true });
});

/** Waits until pg_dump is copying table data from `db`; returns its backend pid. */
async function waitForPgDumpCopy(): Promise<number> {
  const c = new Client(pgClientConfig(tw.config.pg));
  await c.connect();
  try {
    for (let i = 0; i < 600; i++) {
      const r = await c.query<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'dbops' AND query ILIKE 'COPY %'",
        [db],
      );
      if (r.rows[0]) return r.rows[0].pid;
      await new Promise((res) => setTimeout(res, 20));
    }
    throw new Error('pg_dump never started copying');
  } finally {
    await c.end();
  }
}

async function terminate(pid: number): Promise<void> {
  const c = new Client(pgClientConfig(tw.config.pg));
  await c.connect();
  await c.query('SELECT pg_terminate_backend($1)', [pid]);
  await c.end();
}

async function waitForFailedAttempt(handle: {
  describe(): Promise<{ raw: { pendingActivities?: { attempt?: number | null }[] | null } }>;
}) {
  for (let i = 0; i < 300; i++) {
    const d = await handle.describe();
    if ((d.raw.pendingActivities?.[0]?.attempt ?? 1) >= 2) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no retry seen');
}

const completeIds: string[] = [];

/** Only the earlier complete backups are listed, nothing incomplete, and latest is still `baselineId`. */
async function assertNothingVisible(store: BackupStore, baselineId: string) {
  const entries = await listBackupEntries(store, db);
  expect(entries.filter((e) => e.complete).map((e) => e.id)).toEqual(completeIds);
  expect(entries.filter((e) => !e.complete)).toEqual([]);
  expect((await store.getJson<LatestPointer>(latestKey(db)))?.id).toBe(baselineId);
}

describe('backup faults leave no visible backup and no moved latest; the retry succeeds', () => {
  let baselineId: string;

  beforeAll(async () => {
    baselineId = (await (await startBackup(tw.client, tw.config, { database: db, now: nextTime() })).result())
      .backupId;
    completeIds.push(baselineId);
  }, 60_000);

  it('pg_dump killed mid-stream (its backend terminated)', async () => {
    const store = createBackupStore(tw.config.storage);
    const handle = await startBackup(tw.client, tw.config, {
      database: db,
      format: 'plain',
      now: nextTime(),
    });
    await terminate(await waitForPgDumpCopy());
    await waitForFailedAttempt(handle);
    await assertNothingVisible(store, baselineId);
    const result = await handle.result();
    expect((await store.getJson<LatestPointer>(latestKey(db)))?.id).toBe(result.backupId);
    baselineId = result.backupId;
    completeIds.push(baselineId);
    const history = JSON.stringify(await handle.fetchHistory());
    expect(history).toContain('pg_dump exited 1 for database');
    await store.close();
  }, 90_000);

  it('cancelling the workflow kills pg_dump and removes everything', async () => {
    const store = createBackupStore(tw.config.storage);
    const handle = await startBackup(tw.client, tw.config, { database: db, now: nextTime() });
    await waitForPgDumpCopy();
    await handle.cancel();
    await expect(handle.result()).rejects.toThrow();
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    await assertNothingVisible(store, baselineId);
    expect((await readdir(os.tmpdir())).filter((f) => f.startsWith(`dbops-dump-${db}_`))).toEqual([]);
    const c = new Client(pgClientConfig(tw.config.pg));
    await c.connect();
    const left = await c.query(
      "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'dbops%'",
      [db],
    );
    await c.end();
    expect(left.rows).toEqual([]);
    const retry = await (await startBackup(tw.client, tw.config, { database: db, now: nextTime() })).result();
    expect(retry.outcome).toBe('succeeded');
    baselineId = retry.backupId;
    completeIds.push(baselineId);
    await store.close();
  }, 90_000);

  it('the S3 server dies mid-upload (our own versitygw, killed)', async () => {
    const vars = stackVars();
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const data = path.join(dir, 's3data');
    await mkdir(path.join(data, 'faults'), { recursive: true });
    let gw: ChildProcess | undefined;
    const startGw = async () => {
      gw = spawn(
        path.join(vars.DBOPS_STACK_HOME!, 'bin', 'versitygw'),
        ['--port', `127.0.0.1:${port}`, 'posix', data],
        {
          env: {
            ...process.env,
            ROOT_ACCESS_KEY: vars.AWS_ACCESS_KEY_ID!,
            ROOT_SECRET_KEY: vars.AWS_SECRET_ACCESS_KEY!,
          },
          stdio: 'ignore',
        },
      );
      for (let i = 0; i < 100; i++) {
        const up = await fetch(`http://127.0.0.1:${port}/`).then(
          () => true,
          () => false,
        );
        if (up) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('versitygw did not start');
    };
    await startGw();
    process.env.AWS_ACCESS_KEY_ID = vars.AWS_ACCESS_KEY_ID;
    process.env.AWS_SECRET_ACCESS_KEY = vars.AWS_SECRET_ACCESS_KEY;
    const s3tw = await startTestWorker(
      testConfig({
        DBOPS_TASK_QUEUE: `test-backupfault-s3-${suffix}`,
        DBOPS_STORAGE: 's3',
        DBOPS_S3_BUCKET: 'faults',
        DBOPS_S3_ENDPOINT: `http://127.0.0.1:${port}`,
        DBOPS_S3_PREFIX: 'p',
      }),
    );
    const store = createBackupStore(s3tw.config.storage);
    try {
      const handle = await startBackup(s3tw.client, s3tw.config, {
        database: db,
        format: 'plain',
        now: nextTime(),
      });
      await waitForPgDumpCopy();
      gw!.kill('SIGKILL');
      await waitForFailedAttempt(handle);
      await startGw();
      expect(await store.list('')).toEqual([]);
      const result = await handle.result();
      expect(result.location).toContain(`s3://faults/p/${db}/`);
      expect((await listBackupEntries(store, db)).map((e) => e.id)).toEqual([result.backupId]);
    } finally {
      await store.close();
      await s3tw.stop();
      gw?.kill('SIGKILL');
    }
  }, 120_000);
});

describe('a backup given up after its worker was killed: the failure path sweeps the folder', () => {
  // The state a SIGKILLed dump attempt leaves (test/drills/backup-worker-kill.test.ts kills a real
  // worker): an open multipart upload with a part, or a temporary file. The workflow's cleanup
  // (discardIncompleteBackup) must remove it, and only under the backup's own folder.
  it.each(['s3', 'local'] as const)('%s', async (kind) => {
    const overrides = kind === 's3' ? s3Overrides(`t_backupfault_sweep_${suffix}`) : {};
    const config = testConfig({ ...overrides, DBOPS_BACKUP_DIR: path.join(dir, 'sweep') });
    const id = makeBackupId(db, new Date(Date.UTC(2033, 0, 1)));
    const other = makeBackupId(db, new Date(Date.UTC(2033, 0, 2)));
    const leave = async (backupId: string) => {
      const key = backupFileKey(db, backupId, 'dump.pgcustom.zst');
      if (config.storage.kind === 'local') {
        const file = path.join(config.storage.dir, key);
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(`${file}.tmp-0123456789ab`, Buffer.alloc(4096));
        return;
      }
      const s = config.storage;
      const s3 = new S3Client({ region: s.region, endpoint: s.endpoint, forcePathStyle: s.forcePathStyle });
      const Key = `${s.prefix}/${key}`;
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: s.bucket, Key }));
      await s3.send(
        new UploadPartCommand({ Bucket: s.bucket, Key, UploadId, PartNumber: 1, Body: Buffer.alloc(4096) }),
      );
      s3.destroy();
    };
    await leave(id);
    await leave(other);
    const store = createBackupStore(config.storage);
    try {
      const activities = createStorageActivities({ storage: config.storage, retention: config.backup });
      const discard = (input: { database: string; backupId: string }) =>
        activities.discardIncompleteBackup(input);
      const r = await new MockActivityEnvironment().run<
        Parameters<typeof discard>,
        { removed: number },
        typeof discard
      >(discard, { database: db, backupId: id });
      expect(r.removed).toBe(1);
      // The other backup's leftover is not this workflow's to remove (a day-old one goes with the
      // database's next dump); sweeping its folder explicitly removes it.
      expect(await store.sweepInterrupted(`${db}/${other}/`)).toBe(1);
      expect(await store.sweepInterrupted('')).toBe(0);
      if (config.storage.kind === 'local') expect(await readdir(config.storage.dir)).toEqual([]);
    } finally {
      await store.sweepInterrupted('');
      await store.close();
    }
  });
});
