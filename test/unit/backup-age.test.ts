import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackupStore } from '../../activities/storage';
import { makeBackupId, manifestKey, verificationKey } from '../../common/backup';
import { loadConfig, type Config } from '../../src/config';
import { storeBackupAgeSource } from '../../src/worker/backup-age';

describe('the backup-age gauge reads the newest verified backup from the store', () => {
  let dir: string;
  let config: Config;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'dbops-age-'));
    config = loadConfig({ DBOPS_STACK_HOME: dir, DBOPS_BACKUP_DIR: dir, DBOPS_DATABASES: 'shop,empty' });
    const store = createBackupStore(config.storage);
    const put = async (day: number, status?: 'passed' | 'failed') => {
      const taken = new Date(Date.UTC(2026, 10, day, 3));
      const id = makeBackupId('shop', taken);
      await store.putJson(manifestKey('shop', id), {
        manifestVersion: 1,
        id,
        database: 'shop',
        startedAt: taken.toISOString(),
      });
      if (status)
        await store.putJson(verificationKey('shop', id), { status, checkedAt: taken.toISOString() });
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
