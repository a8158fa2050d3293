import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackupStore, listBackupEntries } from '../../activities/storage';
import type { BackupManifest, LatestPointer } from '../../common/backup';
import { latestKey, manifestKey } from '../../common/backup';
import { startBackup } from '../../src/client/backup';
import { backupProgressQuery } from '../../workflows/backup-messages';
import { s3Overrides, testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import { createPopulatedDatabase, dropDatabase, pgTool, rowCounts } from './backup-helpers';

const suffix = uniqueSuffix();
const db = `t_backup_${suffix}`;
let dir: string;
let tw: TestWorker;
const restored: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 't_backup_'));
  const config = testConfig({
    DBOPS_TASK_QUEUE: `test-backup-${suffix}`,
    DBOPS_BACKUP_DIR: dir,
    DBOPS_DATABASES: db,
  });
  await createPopulatedDatabase(config, db, 30_000);
  tw = await startTestWorker(config);
}, 60_000);

afterAll(async () => {
  await tw?.stop();
  for (const d of [db, ...restored]) await dropDatabase(tw.config, d);
  await rm(dir, { recursive: true, force: true });
});

async function restoreAndCount(manifest: BackupManifest, archive: Buffer): Promise<Record<string, number>> {
  const target = `t_backup_r_${uniqueSuffix()}`;
  restored.push(target);
  const cfg = tw.config;
  pgTool(cfg, 'createdb', [target]);
  const work = await mkdtemp(path.join(os.tmpdir(), 't_backup_restore_'));
  try {
    const raw =
      manifest.compression === 'zstd'
        ? execFileSync('zstd', ['-dc'], { input: archive, maxBuffer: 1 << 30 })
        : manifest.compression === 'gzip'
          ? execFileSync('gzip', ['-dc'], { input: archive, maxBuffer: 1 << 30 })
          : archive;
    expect(raw.length).toBe(manifest.rawBytes);
    if (manifest.format === 'plain') pgTool(cfg, 'psql', ['-q', '-v', 'ON_ERROR_STOP=1', '-d', target], raw);
    else if (manifest.format === 'custom') {
      const file = path.join(work, 'dump.pgcustom');
      await import('node:fs/promises').then((f) => f.writeFile(file, raw));
      pgTool(cfg, 'pg_restore', ['-j', '2', '-d', target, file]);
    } else {
      execFileSync('tar', ['-C', work, '-xf', '-'], { input: raw });
      pgTool(cfg, 'pg_restore', ['-j', '2', '-d', target, work]);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return rowCounts(cfg, target, [...manifest.tables]);
}

const expectedCounts = (m: BackupManifest) =>
  Object.fromEntries(m.tables.map((t) => [`${t.schema}.${t.table}`, t.rows]));

describe('backup workflow', () => {
  it.each([
    ['custom', 'zstd'],
    ['custom', 'gzip'],
    ['plain', 'zstd'],
    ['plain', 'gzip'],
    ['directory', 'zstd'],
  ] as const)(
    '%s + %s: restores with stock tools to exactly the manifest row counts',
    async (format, compression) => {
      // Backup ids have a resolution of one second and a small backup takes less: the next one
      // starts in a new second, or it would be the same backup (refused: "already exists").
      await new Promise((r) => setTimeout(r, 1010 - (Date.now() % 1000)));
      const handle = await startBackup(tw.client, tw.config, {
        database: db,
        format,
        compression,
        now: new Date(Date.now() + Math.random() * 1e12),
      });
      const result = await handle.result();
      expect(result).toMatchObject({ outcome: 'succeeded', database: db, format, compression });
      expect((await handle.query(backupProgressQuery)).phase).toBe('done');
      const store = createBackupStore(tw.config.storage);
      const manifest = (await store.getJson<BackupManifest>(manifestKey(db, result.backupId)))!;
      expect(manifest.schemaVersion).toBe('002');
      expect(manifest.tables.find((t) => t.table === 'users')).toMatchObject({ rows: 30_000, kind: 'table' });
      expect(manifest.tables.find((t) => t.table === 'events')).toMatchObject({
        rows: 60_000,
        kind: 'partitioned',
      });
      expect(manifest.tables.find((t) => t.table === 'events_default')).toMatchObject({ kind: 'partition' });
      const archive = await readFile(path.join(dir, db, result.backupId, manifest.file));
      expect(archive.length).toBe(manifest.sizeBytes);
      expect(createHash('sha256').update(archive).digest('hex')).toBe(manifest.sha256);
      expect(await restoreAndCount(manifest, archive)).toEqual(expectedCounts(manifest));
      const latest = await store.getJson<LatestPointer>(latestKey(db));
      expect(latest?.id).toBeDefined();
      await store.close();
    },
    90_000,
  );

  it('S3: object bytes hash to the manifest SHA-256 and the backup restores', async () => {
    const s3tw = await startTestWorker(
      testConfig({
        ...s3Overrides(`t_backup_${suffix}`),
        DBOPS_TASK_QUEUE: `test-backup-s3-${suffix}`,
        DBOPS_DATABASES: db,
      }),
    );
    const store = createBackupStore(s3tw.config.storage);
    try {
      const handle = await startBackup(s3tw.client, s3tw.config, { database: db });
      const result = await handle.result();
      expect(result.location).toMatch(
        new RegExp(`^s3://[^/]+/${testRun().s3Prefix}/t_backup_${suffix}/${db}/${result.backupId}/`),
      );
      const manifest = (await store.getJson<BackupManifest>(manifestKey(db, result.backupId)))!;
      const chunks: Buffer[] = [];
      for await (const c of await store.get(`${db}/${result.backupId}/${manifest.file}`))
        chunks.push(c as Buffer);
      const archive = Buffer.concat(chunks);
      expect(createHash('sha256').update(archive).digest('hex')).toBe(manifest.sha256);
      expect(await restoreAndCount(manifest, archive)).toEqual(expectedCounts(manifest));
      expect((await listBackupEntries(store, db)).map((e) => e.id)).toEqual([result.backupId]);
    } finally {
      for (const o of await store.list('')) await store.delete(o.key);
      await store.close();
      await s3tw.stop();
    }
  }, 90_000);
});
