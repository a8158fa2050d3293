import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNotifyActivities } from '../../activities/notify';
import { createBackupStore, listBackupEntries, pruneDatabase } from '../../activities/storage';
import { latestKey, makeBackupId, manifestKey } from '../../common/backup';
import { backupScheduleId } from '../../common/ids';
import { startBackup } from '../../src/client/backup';
import { applySchedules } from '../../src/schedules';
import { s3Overrides, stackVars, testConfig, uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import { createPopulatedDatabase, dropDatabase } from './backup-helpers';

const suffix = uniqueSuffix();
const db = `t_backupops_${suffix}`;
const PG_SECRET = `pg-secret-${suffix}`;
const HOOK_PATH = `/services/T000/B000/hook-secret-${suffix}`;
let dir: string;
let tw: TestWorker;
let slack: Server;
const posts: { url: string; body: string }[] = [];

beforeAll(async () => {
  slack = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      posts.push({ url: req.url ?? '', body });
      res.writeHead(req.url?.includes('fail') ? 500 : 200).end('ok');
    });
  });
  await new Promise<void>((r) => slack.listen(0, '127.0.0.1', r));
  dir = await mkdtemp(path.join(os.tmpdir(), 't_backupops_'));
  const port = (slack.address() as AddressInfo).port;
  const config = testConfig({
    ...s3Overrides(`t_backupops_${suffix}`),
    DBOPS_TASK_QUEUE: `test-backupops-${suffix}`,
    DBOPS_DATABASES: db,
    PGPASSWORD: PG_SECRET, // the stack's PostgreSQL trusts local connections: any password works
    DBOPS_SLACK_WEBHOOK_URL: `http://127.0.0.1:${port}${HOOK_PATH}`,
  });
  await createPopulatedDatabase(config, db, 5_000);
  tw = await startTestWorker(config);
}, 60_000);

afterAll(async () => {
  await tw?.client.schedule
    .getHandle(backupScheduleId(db))
    .delete()
    .catch(() => undefined);
  const store = createBackupStore(tw.config.storage);
  for (const o of await store.list('')) await store.delete(o.key);
  await store.close();
  await tw?.stop();
  await dropDatabase(tw.config, db);
  await rm(dir, { recursive: true, force: true });
  slack?.close();
});

describe('backup operations', () => {
  it('a backup notifies Slack with size and the run link, and its history holds no secret', async () => {
    const handle = await startBackup(tw.client, tw.config, { database: db });
    const result = await handle.result();
    const post = posts.find((p) => p.body.includes(result.backupId));
    expect(post?.url).toBe(HOOK_PATH);
    const payload = JSON.parse(post!.body) as { text: string };
    expect(payload.text).toContain(`backup of ${db} succeeded`);
    expect(post!.body).toContain(`/workflows/${encodeURIComponent(handle.workflowId)}/`);
    expect(post!.body).toContain('*Size*');

    const history = JSON.stringify(await handle.fetchHistory());
    const awsSecret = stackVars().AWS_SECRET_ACCESS_KEY!;
    expect(awsSecret.length).toBeGreaterThan(3);
    for (const secret of [awsSecret, PG_SECRET, HOOK_PATH, `hook-secret-${suffix}`])
      expect(history).not.toContain(secret);
    // the search attributes and the static summary are set for the Web UI
    const desc = await handle.describe();
    expect(desc.typedSearchAttributes.getAll().map((p) => `${p.key.name}=${String(p.value)}`)).toEqual(
      expect.arrayContaining([`DbopsDatabase=${db}`, 'DbopsOperation=backup']),
    );
    expect(await desc.staticSummary()).toBe(`backup of ${db}, manual`);
  }, 60_000);

  it('the notify activity posts safe JSON, and a failing webhook is reported, never thrown', async () => {
    const port = (slack.address() as AddressInfo).port;
    const env = new MockActivityEnvironment();
    const ok = createNotifyActivities({ slackWebhookUrl: `http://127.0.0.1:${port}/ok` });
    expect(
      await env.run(ok.notifySlack, { text: 'say "hi"\nnow', fields: [{ title: 'a', value: "b'c" }] }),
    ).toEqual({ sent: true });
    expect(JSON.parse(posts.at(-1)!.body)).toMatchObject({ text: 'say "hi"\nnow' });
    const failing = createNotifyActivities({ slackWebhookUrl: `http://127.0.0.1:${port}/fail` });
    expect(await env.run(failing.notifySlack, { text: 'x' })).toEqual({
      sent: false,
      reason: 'Slack answered HTTP 500',
    });
    const unreachable = createNotifyActivities({
      slackWebhookUrl: 'http://127.0.0.1:1/secret-path',
      timeoutMs: 2000,
    });
    const r: { sent: boolean; reason?: string } = await env.run(unreachable.notifySlack, { text: 'x' });
    expect(r.sent).toBe(false);
    expect(r.reason).not.toContain('secret-path');
    expect(
      await env.run(createNotifyActivities({ slackWebhookUrl: undefined }).notifySlack, { text: 'x' }),
    ).toMatchObject({ sent: false });
  });

  it('a schedule triggered now runs the backup; two concurrent triggers give one backup', async () => {
    const store = createBackupStore(tw.config.storage);
    const before = (await listBackupEntries(store, db)).length;
    const applied = await applySchedules(tw.client, tw.config, ['backup']);
    expect(applied).toEqual([{ id: backupScheduleId(db), area: 'backup', action: 'created' }]);
    expect(await applySchedules(tw.client, tw.config, ['backup'])).toEqual([
      { id: backupScheduleId(db), area: 'backup', action: 'updated' },
    ]);
    const schedule = tw.client.schedule.getHandle(backupScheduleId(db));
    const d = await schedule.describe();
    expect(d.policies.overlap).toBe('SKIP');
    await Promise.all([schedule.trigger(), schedule.trigger()]);
    let runs: string[] = [];
    for (let i = 0; i < 60 && runs.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 500));
      runs = (await schedule.describe()).info.recentActions.map((a) => a.action.workflow.workflowId);
    }
    expect(runs[0]).toMatch(new RegExp(`^backup-${db}-\\d{4}-\\d{2}-\\d{2}T`));
    await tw.client.workflow.getHandle(runs[0]!).result();
    await new Promise((r) => setTimeout(r, 1000));
    expect((await schedule.describe()).info.recentActions).toHaveLength(1);
    expect((await listBackupEntries(store, db)).length).toBe(before + 1);
    await store.close();
  }, 90_000);

  it('bad input gets a clear error and writes nothing', async () => {
    // The scheduled backups of the earlier tests start their verification as abandoned children:
    // let those finish first, so that only what this test causes can change the store.
    const running = `TaskQueue="${tw.config.temporal.taskQueue}" AND ExecutionStatus="Running"`;
    for (let i = 0; i < 240; i++) {
      const busy = [];
      for await (const wf of tw.client.workflow.list({ query: running })) busy.push(wf.workflowId);
      if (!busy.length) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const store = createBackupStore(tw.config.storage);
    const before = await store.list('');
    const unknown = await startBackup(tw.client, tw.config, { database: `t_nosuchdb_${suffix}` });
    await expect(unknown.result()).rejects.toMatchObject({
      cause: { cause: { message: expect.stringContaining(`database t_nosuchdb_${suffix} does not exist`) } },
    });
    const badFormat = await startBackup(tw.client, tw.config, {
      database: db,
      format: 'zip' as never,
      now: new Date(Date.UTC(2031, 0, 1)),
    });
    await expect(badFormat.result()).rejects.toMatchObject({
      cause: { message: expect.stringContaining('format zip/compression') },
    });
    await expect(startBackup(tw.client, tw.config, { database: '../etc' })).rejects.toThrow(/not valid/);
    const run = promisify(execFile);
    const cli = run('npx', ['tsx', 'src/cli/main.ts', 'backups', 'show', '../recsys_20260101_000000'], {
      env: process.env,
    }).catch((e: { code: number; stderr: string }) => e);
    const failed = (await cli) as { code: number; stderr: string };
    expect(failed.code).toBe(2);
    expect(failed.stderr).toContain('is not valid: expected <database>_<yyyymmdd>_<hhmmss>');
    expect((await store.list('')).map((o) => o.key)).toEqual(before.map((o) => o.key));
    await store.close();

    const ro = path.join(dir, 'a-file');
    await writeFile(ro, 'x');
    const localTw = await startTestWorker(
      testConfig({ DBOPS_TASK_QUEUE: `test-backupops-ro-${suffix}`, DBOPS_BACKUP_DIR: path.join(ro, 'sub') }),
    );
    try {
      // Its own minute: the workflow ID is per database and minute, and the first test's backup of
      // this database may have run in this same minute.
      const h = await startBackup(localTw.client, localTw.config, {
        database: db,
        now: new Date(Date.UTC(2032, 0, 1)),
      });
      await expect(h.result()).rejects.toMatchObject({
        cause: { cause: { message: expect.stringMatching(/backup folder .*a-file\/sub is not writable/) } },
      });
      expect(await readdir(dir)).toEqual(['a-file']);
    } finally {
      await localTw.stop();
    }
  }, 90_000);

  it.each(['local', 's3'] as const)(
    '%s retention: 45 days back-dated, last 40 failed → newest good kept; dry run deletes nothing',
    async (kind) => {
      const store =
        kind === 'local'
          ? createBackupStore({ kind: 'local', dir: path.join(dir, 'retention') })
          : createBackupStore(testConfig(s3Overrides(`t_backupops_ret_${suffix}`)).storage);
      const rdb = 'retdb';
      const now = Date.now();
      const ids: { id: string; good: boolean; days: number }[] = [];
      for (let days = 45; days >= 1; days--) {
        const id = makeBackupId(rdb, new Date(now - days * 86_400_000));
        const good = days > 40;
        await store.put(`${rdb}/${id}/dump.pgcustom.zst`, Readable.from([Buffer.from('x')]));
        if (good)
          await store.putJson(manifestKey(rdb, id), {
            id,
            database: rdb,
            file: 'dump.pgcustom.zst',
          });
        ids.push({ id, good, days });
      }
      await store.replaceJson(latestKey(rdb), { id: ids.find((i) => i.days === 41)!.id });
      const policy = { retentionDays: 30, minKeep: 3 };
      const dry = await pruneDatabase(store, rdb, policy, true);
      expect(dry.deleted.length).toBeGreaterThan(0);
      expect((await listBackupEntries(store, rdb)).length).toBe(45);
      const real = await pruneDatabase(store, rdb, policy, false);
      expect(real.deleted.map((d) => d.id).sort()).toEqual(dry.deleted.map((d) => d.id).sort());
      const left = await listBackupEntries(store, rdb);
      expect(left.filter((e) => e.complete).map((e) => e.id)).toEqual(
        [43, 42, 41].map((d) => ids.find((i) => i.days === d)!.id),
      );
      expect(
        left
          .filter((e) => !e.complete)
          .every((e) => now - new Date(e.time).getTime() <= 30 * 86_400_000 + 1000),
      ).toBe(true);
      expect(await store.getJson(latestKey(rdb))).toEqual({ id: ids.find((i) => i.days === 41)!.id });
      for (const o of await store.list('')) await store.delete(o.key);
      await store.close();
    },
    60_000,
  );
});
