/**
 * Client-side backup encryption with age (DBOPS_BACKUP_AGE_RECIPIENTS / _IDENTITY) against the dev
 * stack: a real age key pair made here with age-keygen, real backups, verification and restore.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recipientFingerprint } from '../../activities/postgres/age';
import { loadManifest, withBackupStore } from '../../activities/storage';
import { backupFileKey, type BackupFormat, type BackupManifest } from '../../common/backup';
import { rootMessage } from '../../common/failures';
import type { VerifyWorkflowResult } from '../../common/restore';
import type { Config } from '../../src/config';
import type { backupWorkflow } from '../../workflows/backup';
import type { verifyBackupWorkflow } from '../../workflows/verify';
import { startApprovedRestore } from '../drills/kit/restore';
import { testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import { pgTool } from './backup-helpers';
import { dropDatabasesLike, fingerprint, populate, sql } from './restore-fixtures';

const suffix = uniqueSuffix();
const db = `t_age_${suffix}`;
const queue = `test-age-${suffix}`;
const dir = path.join(testRun().backupDir, `age-${suffix}`);
const keys = path.join(dir, 'keys');
const MARKER = `secret-marker-${suffix}-do-not-leak`;
const ageBin = testConfig().age.bin;

let tw: TestWorker;
let recipient: string;
let before: Record<string, string>;
const env = (extra: Record<string, string | undefined> = {}) => ({
  DBOPS_TASK_QUEUE: queue,
  DBOPS_BACKUP_DIR: path.join(dir, 'store'),
  DBOPS_DATABASES: db,
  ...extra,
});
let config: Config;

function keygen(name: string): string {
  const file = path.join(keys, name);
  execFileSync(path.join(path.dirname(ageBin), 'age-keygen'), ['-o', file], { stdio: 'ignore' });
  return execFileSync(path.join(path.dirname(ageBin), 'age-keygen'), ['-y', file])
    .toString()
    .trim();
}

async function backUp(cfg: Config, format: BackupFormat): Promise<BackupManifest> {
  await new Promise((r) => setTimeout(r, 1100)); // one backup id per second
  const { backupId } = await tw.client.workflow.execute<typeof backupWorkflow>('backupWorkflow', {
    taskQueue: cfg.temporal.taskQueue,
    workflowId: `test-age-backup-${Date.now()}`,
    args: [{ database: db, trigger: 'manual', format, prune: false, verify: false }],
  });
  return withBackupStore(cfg.storage, (store) => loadManifest(store, backupId));
}

const storedBytes = (m: BackupManifest) =>
  readFile(path.join(dir, 'store', backupFileKey(m.database, m.id, m.file)));

function verify(worker: TestWorker, cfg: Config, backupId: string): Promise<VerifyWorkflowResult> {
  return worker.client.workflow.execute<typeof verifyBackupWorkflow>('verifyBackupWorkflow', {
    taskQueue: cfg.temporal.taskQueue,
    workflowId: `test-age-verify-${Date.now()}`,
    args: [{ backupId, maximumAttempts: 1, rounds: 1 }],
  });
}

beforeAll(async () => {
  await mkdir(keys, { recursive: true });
  recipient = keygen('identity.txt');
  config = testConfig(
    env({
      DBOPS_BACKUP_AGE_RECIPIENTS: recipient,
      DBOPS_BACKUP_AGE_IDENTITY: path.join(keys, 'identity.txt'),
    }),
  );
  await populate(config, db, 2000);
  await sql(config, db, 'CREATE TABLE secrets (id int PRIMARY KEY, v text)');
  await sql(config, db, 'INSERT INTO secrets SELECT g, $1 FROM generate_series(1, 50) g', [MARKER]);
  before = await fingerprint(config, db);
  tw = await startTestWorker(config);
}, 120_000);

afterAll(async () => {
  await tw?.stop();
  await dropDatabasesLike(config, db);
  await rm(dir, { recursive: true, force: true });
});

describe('encrypted backups (age)', () => {
  let custom: BackupManifest;

  it.each(['custom', 'plain'] as const)(
    'a %s backup is pg_dump | zstd | age: the stored bytes are age ciphertext without the table data',
    async (format) => {
      const m = await backUp(config, format);
      if (format === 'custom') custom = m;
      expect(m.file).toMatch(/\.zst\.age$/);
      expect(m.encryption).toEqual({ alg: 'age', recipients: [recipientFingerprint(recipient)] });
      const bytes = await storedBytes(m);
      expect(bytes.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
      expect(bytes.includes(Buffer.from(MARKER))).toBe(false);
      // pg_dump's own output holds the marker: the search above would see it in the clear.
      expect(pgTool(config, 'pg_dump', ['-d', db, '-t', 'secrets']).includes(Buffer.from(MARKER))).toBe(true);
    },
    120_000,
  );

  it('verifies and restores with the identity: identical data', async () => {
    expect((await verify(tw, config, custom.id)).status).toBe('passed');
    await sql(config, db, 'DELETE FROM secrets WHERE id > 10');
    const handle = await startApprovedRestore(tw.client, queue, {
      backup: custom.id,
      target: db,
      maximumAttempts: 1,
    });
    expect((await handle.result()).outcome).toBe('restored');
    expect(await fingerprint(config, db)).toEqual(before);
    expect((await sql<{ n: string }>(config, db, 'SELECT count(*) AS n FROM secrets'))[0]!.n).toBe('50');
  }, 240_000);

  it.each([
    ['without an identity', undefined, /has no identity to decrypt it: set DBOPS_BACKUP_AGE_IDENTITY/],
    ['with another identity', 'other.txt', /does not hold a key of its recipients/],
  ])(
    'a worker %s cannot verify it, says why, and records no verdict',
    async (_what, other, why) => {
      const identity = other ? (keygen(other), path.join(keys, other)) : undefined;
      const cfg = testConfig(
        env({ DBOPS_TASK_QUEUE: `${queue}-${other ?? 'none'}`, DBOPS_BACKUP_AGE_IDENTITY: identity }),
      );
      const worker = await startTestWorker(cfg);
      try {
        const err = await verify(worker, cfg, custom.id).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(WorkflowFailedError);
        expect(rootMessage(err)).toMatch(why);
      } finally {
        await worker.stop();
      }
      // The earlier verdict stands: a backup the worker cannot read is never recorded (or pruned) as bad.
      const verification = JSON.parse(
        await readFile(path.join(dir, 'store', db, custom.id, 'verification.json'), 'utf8'),
      ) as { status: string };
      expect(verification.status).toBe('passed');
    },
    240_000,
  );

  it('refuses the directory format: pg_dump would write it to the scratch folder in plaintext', async () => {
    const err = await backUp(config, 'directory').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(rootMessage(err)).toMatch(/use format custom or plain with zstd compression, not directory/);
  }, 120_000);
});
