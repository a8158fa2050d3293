import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, rmdir, truncate, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compareMirror,
  createBackupStore,
  listBackupEntries,
  MirroredStore,
  pruneDatabase,
  repairMirror,
  type BackupStore,
} from '../../activities/storage';
import type { BackupManifest } from '../../common/backup';
import { latestKey, manifestKey } from '../../common/backup';
import { startBackup } from '../../src/client/backup';
import type { Config } from '../../src/config';
import { dbops } from '../drills/kit/dbops-cli';
import { s3Overrides, stackVars, testConfig, uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import { createPopulatedDatabase, dropDatabase } from './backup-helpers';

const suffix = uniqueSuffix();
const db = `t_mirror_${suffix}`;
/** Its mirror folder holds a regular file named like the database: every local write there fails. */
const blocked = `t_mirror_blocked_${suffix}`;
let dir: string;
let env: Record<string, string>;
let config: Config;
let tw: TestWorker;

/** The mirrored store of `config`, and its two sides opened on their own (S3 only, the folder only). */
function stores(cfg: Config): { both: MirroredStore; s3: BackupStore; local: BackupStore } {
  const both = createBackupStore(cfg.storage);
  if (!(both instanceof MirroredStore) || cfg.storage.kind !== 's3')
    throw new Error('expected a mirrored store');
  const { mirror, ...s3 } = cfg.storage;
  return { both, s3: createBackupStore(s3), local: createBackupStore(mirror!) };
}

async function sha256(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 't_mirror_'));
  const vars = stackVars();
  env = {
    ...s3Overrides(`t_mirror_${suffix}`),
    // The CLI runs as its own process: the dev stack's S3 keys, as a user's shell exports them.
    AWS_ACCESS_KEY_ID: vars.AWS_ACCESS_KEY_ID!,
    AWS_SECRET_ACCESS_KEY: vars.AWS_SECRET_ACCESS_KEY!,
    AWS_REGION: vars.AWS_REGION ?? 'us-east-1',
    DBOPS_BACKUP_MIRROR: 'local',
    DBOPS_BACKUP_DIR: dir,
    DBOPS_TASK_QUEUE: `test-backup-mirror-${suffix}`,
    DBOPS_DATABASES: `${db},${blocked}`,
  };
  config = testConfig(env);
  await createPopulatedDatabase(config, db, 10_000);
  await createPopulatedDatabase(config, blocked, 1_000);
  tw = await startTestWorker(config);
}, 60_000);

afterAll(async () => {
  await tw?.stop();
  for (const d of [db, blocked]) await dropDatabase(config, d);
  const { s3 } = stores(config);
  await s3.sweepInterrupted('');
  for (const o of await s3.list('')) await s3.delete(o.key);
  await s3.close();
  await rm(dir, { recursive: true, force: true });
});

describe('DBOPS_BACKUP_MIRROR=local on the dev stack S3', () => {
  it('a backup lands in S3 and the folder with identical bytes; list shows the copy; prune removes both', async () => {
    const { both, s3, local } = stores(config);
    try {
      const first = await (await startBackup(tw.client, config, { database: db })).result();
      expect(first.location).toMatch(/^s3:\/\//);
      const manifest = (await s3.getJson<BackupManifest>(manifestKey(db, first.backupId)))!;
      const dumpKey = `${db}/${first.backupId}/${manifest.file}`;
      expect(await sha256(await s3.get(dumpKey))).toBe(manifest.sha256);
      expect(await sha256(await local.get(dumpKey))).toBe(manifest.sha256);
      expect(await local.getJson(manifestKey(db, first.backupId))).toEqual(manifest);
      expect(await local.getJson(latestKey(db))).toEqual(await s3.getJson(latestKey(db)));
      expect((await local.list(`${db}/${first.backupId}/`)).map((o) => [o.key, o.size])).toEqual(
        (await s3.list(`${db}/${first.backupId}/`)).map((o) => [o.key, o.size]),
      );

      const listed = await dbops(env, 'backups', 'list', '--db', db, '--json');
      expect(listed).toMatchObject({ code: 0, stderr: '' });
      const rows = JSON.parse(listed.stdout) as { id: string; location: string; localCopy: unknown }[];
      expect(rows).toEqual([
        expect.objectContaining({
          id: first.backupId,
          location: expect.stringMatching(/^s3:\/\//),
          localCopy: { status: 'ok', detail: '', location: path.join(dir, db, first.backupId) },
        }),
      ]);
      const table = await dbops(env, 'backups', 'list', '--db', db);
      expect(table.stdout).toMatch(/local copy/);
      expect(table.stdout).toMatch(new RegExp(`${first.backupId} .* ok `));

      // Someone deletes the local dump: the listing says so (S3 still holds the backup), and the
      // copy is made whole again from S3.
      await unlink(path.join(dir, dumpKey));
      const gone = await dbops(env, 'backups', 'list', '--db', db);
      expect(gone.code).toBe(0);
      expect(gone.stdout).toMatch(new RegExp(`${first.backupId} .* damaged `));
      expect(gone.stderr).toContain(
        `local copy of ${db}/${first.backupId} is damaged (${manifest.file} missing) in ${path.join(dir, db, first.backupId)}`,
      );
      expect(gone.stderr).toContain(`run "dbops backups repair-copies --db ${db}"`);
      const repaired = await dbops(env, 'backups', 'repair-copies', '--db', db);
      expect(repaired.code).toBe(0);
      expect(repaired.stdout).toContain(`copied ${s3.describe(dumpKey)} -> ${path.join(dir, dumpKey)}`);
      expect(repaired.stdout).toContain('1 file copied back');
      expect(await sha256(await local.get(dumpKey))).toBe(manifest.sha256);
      expect((await compareMirror(both, db)).copies.get(first.backupId)?.status).toBe('ok');
      expect((await dbops(env, 'backups', 'repair-copies', '--db', db)).stdout).toContain(
        '0 files copied back',
      );
      // A truncated copy differs in size; a copy gone altogether is missing; a folder only the
      // copy holds (no backup in S3) is named too.
      await truncate(path.join(dir, dumpKey), 100);
      expect((await compareMirror(both, db)).copies.get(first.backupId)).toMatchObject({
        status: 'damaged',
        detail: `${manifest.file} is 100 bytes, ${manifest.sizeBytes} in S3`,
      });
      await rm(path.join(dir, db, first.backupId), { recursive: true });
      const stray = `${db}_20200101_000000`;
      await local.putJson(manifestKey(db, stray), { id: stray });
      const report = await compareMirror(both, db);
      expect(report.copies.get(first.backupId)).toMatchObject({
        status: 'missing',
        detail: 'none of its 2 objects',
      });
      expect(report.orphans).toEqual([stray]);
      const strays = await dbops(env, 'backups', 'list', '--db', db);
      expect(strays.stdout).toMatch(new RegExp(`${first.backupId} .* missing `));
      expect(strays.stderr).toContain(`${path.join(dir, db, stray)} is a local copy with no backup in S3`);
      expect((await repairMirror(both, db)).sort()).toEqual(
        (await s3.list(`${db}/${first.backupId}/`)).map((o) => o.key).sort(),
      );
      expect(await sha256(await local.get(dumpKey))).toBe(manifest.sha256);
      await local.delete(manifestKey(db, stray));

      // A second backup (its own minute: one workflow id per database and minute), then retention
      // as if days had passed: the older backup goes from S3 and from the folder.
      const second = await (
        await startBackup(tw.client, config, { database: db, now: new Date(Date.now() + 120_000) })
      ).result();
      expect(second.backupId > first.backupId).toBe(true);
      const later = new Date(Date.now() + 3 * 86_400_000);
      const pruned = await pruneDatabase(both, db, { retentionDays: 1, minKeep: 1 }, false, later);
      expect(pruned.deleted.map((d) => d.id)).toEqual([first.backupId]);
      expect(await s3.list(`${db}/${first.backupId}/`)).toEqual([]);
      expect(await local.list(`${db}/${first.backupId}/`)).toEqual([]);
      expect((await listBackupEntries(both, db)).map((e) => e.id)).toEqual([second.backupId]);
      expect((await local.list(`${db}/${second.backupId}/`)).length).toBeGreaterThan(1);
      expect([...(await compareMirror(both, db)).copies]).toEqual([
        [second.backupId, expect.objectContaining({ status: 'ok' })],
      ]);
    } finally {
      await Promise.all([both.close(), s3.close(), local.close()]);
    }
  }, 120_000);

  it('a mirror that cannot be written fails the backup and leaves no S3 object', async () => {
    await writeFile(path.join(dir, blocked), 'not a folder');
    const { s3 } = stores(config);
    try {
      const handle = await startBackup(tw.client, config, { database: blocked });
      await expect(handle.result()).rejects.toMatchObject({
        cause: {
          cause: {
            message: expect.stringMatching(
              new RegExp(`backup folder ${dir} is not writable \\(ENOTDIR on ${blocked}/`),
            ),
          },
        },
      });
      expect(await s3.list(`${blocked}/`)).toEqual([]);
      expect(await s3.sweepInterrupted(`${blocked}/`)).toBe(0);
    } finally {
      await s3.close();
      await unlink(path.join(dir, blocked));
    }
  }, 60_000);
});

describe('the mirrored put: both copies or neither', () => {
  it('a multipart object, JSON objects and deletes reach both sides; reads and lists come from S3', async () => {
    const { both, s3, local } = stores(config);
    try {
      const data = Buffer.alloc(20 * 1024 * 1024 + 77);
      for (let i = 0; i + 4 <= data.length; i += 4096) data.writeUInt32LE(i, i);
      const { size } = await both.put(
        'obj/a/big.bin',
        Readable.from([data.subarray(0, 7e6), data.subarray(7e6)]),
      );
      expect(size).toBe(data.length);
      const want = createHash('sha256').update(data).digest('hex');
      expect(await sha256(await s3.get('obj/a/big.bin'))).toBe(want);
      expect(await sha256(await local.get('obj/a/big.bin'))).toBe(want);
      await both.putJson('obj/a/m.json', { v: 1 });
      await both.replaceJson('obj/latest.json', { id: 2 });
      for (const side of [s3, local]) {
        expect(await side.getJson('obj/a/m.json')).toEqual({ v: 1 });
        expect(await side.getJson('obj/latest.json')).toEqual({ id: 2 });
      }
      expect(both.describe('obj/a/m.json')).toBe(s3.describe('obj/a/m.json'));
      expect(await both.list('obj/')).toEqual(await s3.list('obj/'));
      await both.delete('obj/a/big.bin');
      await both.delete('obj/a/m.json');
      await both.delete('obj/latest.json');
      expect(await s3.list('obj/')).toEqual([]);
      expect(await local.list('obj/')).toEqual([]);
      await both.probeWritable();
    } finally {
      await Promise.all([both.close(), s3.close(), local.close()]);
    }
  }, 60_000);

  it('the local copy failing after S3 has parts aborts the upload: no S3 object, no upload left', async () => {
    const { both, s3, local } = stores(config);
    try {
      await mkdir(path.join(dir, 'gone'), { recursive: true });
      const body = new PassThrough();
      const put = both.put('gone/x/big.bin', body);
      // 12 MiB: S3 has a part of 8 MiB; then the local folder goes, so the copy's rename fails.
      body.write(Buffer.alloc(12 * 1024 * 1024, 1));
      await new Promise((r) => setTimeout(r, 500));
      await rm(path.join(dir, 'gone', 'x'), { recursive: true, force: true });
      body.end(Buffer.alloc(1024, 2));
      await expect(put).rejects.toThrow(/no object .*gone\/x\/big\.bin in the backup folder/);
      expect(await s3.list('gone/')).toEqual([]);
      expect(await s3.sweepInterrupted('gone/')).toBe(0);
      expect(await local.list('gone/')).toEqual([]);
      await rmdir(path.join(dir, 'gone')).catch(() => undefined);
    } finally {
      await Promise.all([both.close(), s3.close(), local.close()]);
    }
  }, 60_000);

  it('S3 failing removes the local copy; a cancelled put leaves neither', async () => {
    const missing = testConfig({ ...env, DBOPS_S3_BUCKET: `no-such-bucket-${suffix}` });
    const { both: broken } = stores(missing);
    try {
      await expect(broken.put('nob/x/small.bin', Readable.from([Buffer.from('tiny')]))).rejects.toThrow(
        /bucket no-such-bucket-.* does not exist/,
      );
      await expect(broken.putJson('nob/x/m.json', { a: 1 })).rejects.toThrow(/does not exist/);
      await expect(readFile(path.join(dir, 'nob', 'x', 'small.bin'))).rejects.toThrow(/ENOENT/);
      await expect(readFile(path.join(dir, 'nob', 'x', 'm.json'))).rejects.toThrow(/ENOENT/);
    } finally {
      await broken.close();
    }

    const { both, s3, local } = stores(config);
    try {
      const ac = new AbortController();
      const body = new PassThrough();
      const put = both.put('cancel/x/big.bin', body, { signal: ac.signal });
      body.write(Buffer.alloc(10 * 1024 * 1024, 3));
      setTimeout(() => ac.abort(new Error('backup cancelled')), 300);
      await expect(put).rejects.toThrow('backup cancelled');
      expect(await s3.list('cancel/')).toEqual([]);
      expect(await local.list('cancel/')).toEqual([]);
      expect(await local.sweepInterrupted('cancel/')).toBe(0);
    } finally {
      await Promise.all([both.close(), s3.close(), local.close()]);
    }
  }, 60_000);
});

// The bucket the tests share is the dev stack's; nothing here may land outside this run's prefix.
it('uses the run prefix of the dev stack bucket', () => {
  expect(config.storage).toMatchObject({ kind: 's3', bucket: stackVars().DBOPS_S3_BUCKET });
  expect(config.storage.kind === 's3' && config.storage.prefix).toMatch(new RegExp(`/t_mirror_${suffix}$`));
});
