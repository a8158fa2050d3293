import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBackupStore } from '../../activities/storage';
import { verificationKey } from '../../common/backup';
import { loadConfig, type Config } from '../../src/config';
import { storeBackupAgeSource } from '../../src/worker/backup-age';
import { putShopManifest } from '../helpers/manifests';

describe('the backup-age gauge reads the newest verified backup from the store', () => {
  let dir: string;
  let config: Config;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'dbops-age-'));
    config = loadConfig({ DBOPS_STACK_HOME: dir, DBOPS_BACKUP_DIR: dir, DBOPS_DATABASES: 'shop,empty' });
    const store = createBackupStore(config.storage);
    const put = async (day: number, status?: 'passed' | 'failed') => {
      const id = await putShopManifest(store, day);
      const checkedAt = new Date(Date.UTC(2026, 10, day, 3)).toISOString();
      if (status) await store.putJson(verificationKey('shop', id), { status, checkedAt });
    };
    await put(20, 'passed');
    await put(21, 'passed');
    await put(22, 'failed');
    await put(23);
    await store.close();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('skips failed and unverified backups, and databases with none', async () => {
    const newest = await storeBackupAgeSource(config)();
    expect(newest.filter((b) => b.kind === 'verified')).toEqual([
      { kind: 'verified', database: 'shop', takenAt: new Date(Date.UTC(2026, 10, 21, 3)) },
    ]);
  });
});

describe('after a restart, the backup store tells the newest backup', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads when the newest complete backup finished, its size and duration from its manifest', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'dbops-outcomes-'));
    const config = loadConfig({ DBOPS_STACK_HOME: dir, DBOPS_BACKUP_DIR: dir, DBOPS_DATABASES: 'shop' });
    const store = createBackupStore(config.storage);
    const finishedAt = '2026-11-20T03:02:00.000Z';
    await putShopManifest(store, 20, { finishedAt, sizeBytes: 5000, durationMs: 120_000 });
    await putShopManifest(store, 21); // another tool's manifest: says nothing about size or duration
    await store.close();

    const known = await storeBackupAgeSource(config)();
    expect(known).toEqual([
      {
        kind: 'finished',
        database: 'shop',
        takenAt: new Date(Date.UTC(2026, 10, 20, 3)),
        finishedAt: new Date(finishedAt),
        sizeBytes: 5000,
        durationSeconds: 120,
      },
    ]);
  });
});
