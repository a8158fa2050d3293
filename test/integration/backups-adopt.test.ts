/**
 * `dbops backups adopt` against the dev stack: the spec's backup.sh files, made here as backup.sh
 * makes them (`pg_dump --format=plain --no-owner --no-privileges [--verbose] 2>&1 | gzip`), from a
 * folder and from an S3 prefix; then listed, verified (which counts their rows), restored through
 * the shadow, approval and swap, and pruned by the same retention rules as any backup.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackupStore, loadManifest, withBackupStore } from '../../activities/storage';
import type { AdoptReport } from '../../activities/postgres/adopt';
import type { BackupManifest } from '../../common/backup';
import { rootMessage } from '../../common/failures';
import type { VerifyWorkflowResult } from '../../common/restore';
import type { Config } from '../../src/config';
import type { verifyBackupWorkflow } from '../../workflows/verify';
import { dbops } from '../drills/kit/dbops-cli';
import { startRestoreAwaitingApproval } from '../drills/kit/restore';
import { restoreApprovalUpdate } from '../../workflows/restore-messages';
import { s3Overrides, testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import { rowCounts } from './backup-helpers';
import { dropDatabasesLike, fingerprint, populate, sql } from './restore-fixtures';

const suffix = uniqueSuffix();
const db = `t_adopt_${suffix}`;
const queue = `test-adopt-${suffix}`;
const specDir = path.join(testRun().backupDir, `spec-${suffix}`);
const storeDir = path.join(testRun().backupDir, `adopt-${suffix}`);
const env = { DBOPS_TASK_QUEUE: queue, DBOPS_BACKUP_DIR: storeDir, DBOPS_DATABASES: db };
const config = testConfig(env);
const s3Env = {
  ...env,
  ...s3Overrides(`adopt-${suffix}`),
  DBOPS_TASK_QUEUE: `${queue}-s3`,
  // For the CLI's child process (s3Overrides sets them in this process only).
  AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID!,
  AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY!,
  AWS_REGION: process.env.AWS_REGION!,
};
const s3Config = testConfig(s3Env);

/** The spec's files: name → what backup.sh (or something else) left there. */
const FILES = {
  clean: `${db}_20261101_020000.sql.gz`,
  verbose: `${db}_20261102_020000.sql.gz`,
  /** As a pg_dump older than the \restrict fix (before 17.6, 16.10, …) wrote it: no lock lines. */
  old: `${db}_20261103_020000.sql.gz`,
  truncated: `${db}_20261104_020000.sql.gz`,
  unrelated: `${db}_20261105_020000.sql.gz`,
};
const idOf = (file: string) => file.replace(/\.sql\.gz$/, '');

let tw: TestWorker;
let before: Record<string, string>;
let counts: Record<string, number>;

/** backup.sh's pipeline, run by a shell as the script ran it. */
function specDump(cfg: Config, verbose: boolean): Buffer {
  const dump = `"${cfg.pg.binDir}/pg_dump" -d "${db}" --format=plain --no-owner --no-privileges${verbose ? ' --verbose' : ''} 2>&1`;
  return execFileSync('sh', ['-c', dump], {
    maxBuffer: 1 << 30,
    env: { PATH: process.env.PATH, PGHOST: cfg.pg.host, PGPORT: String(cfg.pg.port), PGUSER: cfg.pg.user },
  });
}

async function writeSpecFiles(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const verbose = specDump(config, true);
  // The verbose lines land mid-line where stdout's blocks end: the filter's hard case is present.
  expect(verbose.toString('latin1')).toMatch(/[^\n]pg_dump: /);
  const withoutLock = Buffer.from(
    verbose
      .toString('latin1')
      .split('\n')
      .filter((l) => !/^\\(un)?restrict /.test(l))
      .join('\n'),
    'latin1',
  );
  const gz = gzipSync(verbose);
  await writeFile(path.join(dir, FILES.clean), gzipSync(specDump(config, false)));
  await writeFile(path.join(dir, FILES.verbose), gz);
  await writeFile(path.join(dir, FILES.old), gzipSync(withoutLock));
  await writeFile(path.join(dir, FILES.truncated), gz.subarray(0, Math.floor(gz.length / 2)));
  await writeFile(path.join(dir, FILES.unrelated), gzipSync('id,name\n1,not a dump\n'));
  await writeFile(path.join(dir, 'notes.txt'), 'the runbook is elsewhere\n');
  await symlink(FILES.old, path.join(dir, `${db}_latest.sql.gz`));
}

async function adopt(
  e: Record<string, string>,
  ...args: string[]
): Promise<{ code: number; report: AdoptReport }> {
  const r = await dbops(e, 'backups', 'adopt', '--json', ...args);
  return { code: r.code, report: JSON.parse(r.stdout) as AdoptReport };
}

const statusOf = (report: AdoptReport) =>
  Object.fromEntries(report.files.map((f) => [path.basename(f.file.replace(/^s3:\/\//, '')), f.status]));

async function verify(cfg: Config, worker: TestWorker, backupId: string): Promise<VerifyWorkflowResult> {
  return worker.client.workflow.execute<typeof verifyBackupWorkflow>('verifyBackupWorkflow', {
    taskQueue: cfg.temporal.taskQueue,
    workflowId: `test-adopt-verify-${backupId}-${Date.now()}`,
    args: [{ backupId, maximumAttempts: 1 }],
  });
}

const manifestOf = (cfg: Config, id: string): Promise<BackupManifest> =>
  withBackupStore(cfg.storage, (store) => loadManifest(store, id));

beforeAll(async () => {
  await populate(config, db, 3000);
  before = await fingerprint(config, db);
  const tables = (
    await sql<{ schema: string; table: string }>(
      config,
      db,
      "SELECT schemaname AS schema, tablename AS table FROM pg_tables WHERE schemaname = 'public'",
    )
  ).map((t) => ({ schema: t.schema, table: t.table }));
  counts = await rowCounts(config, db, tables);
  await writeSpecFiles(specDir);
  tw = await startTestWorker(config);
}, 240_000);

afterAll(async () => {
  await tw?.stop();
  await dropDatabasesLike(config, db);
  await rm(specDir, { recursive: true, force: true });
  await rm(storeDir, { recursive: true, force: true });
});

describe('dbops backups adopt (from a folder)', () => {
  it('a dry run checks every file and writes nothing', async () => {
    const { code, report } = await adopt(env, '--from', specDir, '--dry-run');
    expect(code).not.toBe(0);
    expect(statusOf(report)).toMatchObject({
      [FILES.clean]: 'would adopt',
      [FILES.verbose]: 'would adopt',
      [FILES.old]: 'would adopt',
      [FILES.truncated]: 'unusable',
      [FILES.unrelated]: 'unusable',
    });
    await expect(readdir(storeDir)).rejects.toThrow(/ENOENT/);
  }, 120_000);

  it('adopts the good files (filtering pg_dump --verbose lines), reports the others with the reason', async () => {
    const r = await dbops(env, 'backups', 'adopt', '--from', specDir);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('2 files could not be adopted');
    const { report } = await adopt(env, '--from', specDir);
    const byName = Object.fromEntries(report.files.map((f) => [path.basename(f.file), f]));
    expect(statusOf(report)).toEqual({
      [FILES.clean]: 'already adopted',
      [FILES.verbose]: 'already adopted',
      [FILES.old]: 'already adopted',
      [FILES.truncated]: 'unusable',
      [FILES.unrelated]: 'unusable',
      'notes.txt': 'skipped',
      [`${db}_latest.sql.gz`]: 'skipped',
    });
    expect(byName[FILES.truncated]!.reason).toMatch(/does not decompress \(gzip\): unexpected end of file/);
    expect(byName[FILES.unrelated]!.reason).toMatch(/not a pg_dump plain dump/);
    expect(byName['notes.txt']!.reason).toMatch(/not named like a backup/);
    const clean = await manifestOf(config, idOf(FILES.clean));
    const verbose = await manifestOf(config, idOf(FILES.verbose));
    const old = await manifestOf(config, idOf(FILES.old));
    expect(clean.adopted).toMatchObject({ verboseLines: 0, restrictLock: 'own' });
    expect(verbose.adopted!.verboseLines).toBeGreaterThan(20);
    expect(verbose.adopted!.restrictLock).toBe('own');
    expect(old.adopted).toMatchObject({ verboseLines: verbose.adopted!.verboseLines, restrictLock: 'added' });
    expect(clean).toMatchObject({
      format: 'plain',
      compression: 'gzip',
      tables: [],
      startedAt: '2026-11-01T02:00:00.000Z',
    });
    expect(clean.dumpOptions).toEqual({ noOwner: true, noPrivileges: true });
    // The stored archive is the spec's file, byte for byte.
    expect(await sha256(path.join(specDir, FILES.old))).toBe(old.sha256);
    // Nothing of the unusable files stays in the store.
    expect(await readdir(path.join(storeDir, db))).toEqual(
      [FILES.clean, FILES.verbose, FILES.old].map(idOf).sort(),
    );
  }, 120_000);

  it('lists them; retention counts none as good before verification', async () => {
    const list = await dbops(env, 'backups', 'list', '--db', db, '--json');
    const entries = JSON.parse(list.stdout) as { id: string; status: string; manifest?: BackupManifest }[];
    expect(entries.map((e) => [e.id, e.status, e.manifest?.adopted?.restrictLock])).toEqual([
      [idOf(FILES.clean), 'complete', 'own'],
      [idOf(FILES.verbose), 'complete', 'own'],
      [idOf(FILES.old), 'complete', 'added'],
    ]);
    const prune = await dbops(
      { ...env, DBOPS_RETENTION_DAYS: '7' },
      'backups',
      'prune',
      '--db',
      db,
      '--dry-run',
      '--json',
    );
    const [plan] = JSON.parse(prune.stdout) as { deleted: { id: string }[]; kept: { id: string }[] }[];
    // None is good yet (no verification), so none is protected as the newest good backup.
    expect(plan!.deleted.map((d) => d.id).sort()).toEqual([FILES.clean, FILES.verbose, FILES.old].map(idOf));
    expect(plan!.kept).toEqual([]);
  }, 60_000);

  it.each(['verbose', 'old'] as const)(
    'verifies the %s dump by a test restore, which fills in its row counts',
    async (which) => {
      const id = idOf(FILES[which]);
      const result = await verify(config, tw, id);
      expect(result.status).toBe('passed');
      const m = await manifestOf(config, id);
      expect(m.adopted!.countedAt).toBeDefined();
      expect(m.schemaVersion).toBe('002');
      const leafCounts = Object.fromEntries(
        m.tables.filter((t) => t.kind !== 'partitioned').map((t) => [`${t.schema}.${t.table}`, t.rows]),
      );
      expect(leafCounts).toEqual(
        Object.fromEntries(Object.entries(counts).filter(([t]) => t !== 'public.events')),
      );
      expect(m.tables.find((t) => t.table === 'events')).toMatchObject({
        kind: 'partitioned',
        rows: counts['public.events'],
      });
    },
    240_000,
  );

  it('restores an adopted backup never verified through the shadow, approval and swap: identical data', async () => {
    await sql(config, db, 'DELETE FROM users WHERE id % 3 = 0');
    expect(await fingerprint(config, db)).not.toEqual(before);
    const { handle, status } = await startRestoreAwaitingApproval(tw.client, queue, {
      backup: idOf(FILES.clean),
      target: db,
      maximumAttempts: 1,
    });
    // The approver sees that nothing is counted yet, not "0 tables, 0 rows".
    expect([status.plan!.tables, status.plan!.rows]).toEqual([-1, -1]);
    expect(status.plan!.steps.join('\n')).toContain("rows into the adopted backup's manifest");
    await handle.executeUpdate(restoreApprovalUpdate, {
      args: [{ decision: 'approve', by: 'bob', planHash: status.planHash! }],
    });
    expect((await handle.result()).outcome).toBe('restored');
    expect(await fingerprint(config, db)).toEqual(before);
    expect((await manifestOf(config, idOf(FILES.clean))).tables.length).toBeGreaterThan(0);
  }, 240_000);

  it('restores the verified dump that had --verbose lines: the plan shows its counted rows, the data is identical', async () => {
    await sql(config, db, 'DELETE FROM events WHERE id % 5 = 0');
    const { handle, status } = await startRestoreAwaitingApproval(tw.client, queue, {
      backup: idOf(FILES.verbose),
      target: db,
      maximumAttempts: 1,
    });
    expect(status.plan!.verified).toBe('passed');
    expect(status.plan!.rows).toBe(
      Object.entries(counts)
        .filter(([t]) => t !== 'public.events')
        .reduce((sum, [, n]) => sum + n, 0),
    );
    await handle.executeUpdate(restoreApprovalUpdate, {
      args: [{ decision: 'approve', by: 'bob', planHash: status.planHash! }],
    });
    expect((await handle.result()).outcome).toBe('restored');
    expect(await fingerprint(config, db)).toEqual(before);
  }, 240_000);

  it('retention then keeps the newest verified adopted backup and prunes the rest by the same rules', async () => {
    const r = await dbops(
      { ...env, DBOPS_RETENTION_DAYS: '7', DBOPS_RETENTION_MIN_KEEP: '1' },
      'backups',
      'prune',
      '--db',
      db,
    );
    expect(r.code).toBe(0);
    const left = (await readdir(path.join(storeDir, db))).filter((n) => n.startsWith(db));
    expect(left).toEqual([idOf(FILES.old)]);
  }, 60_000);
});

describe('with DBOPS_MANIFEST_KEY', () => {
  it('adopt signs the manifest, and the worker signs it again when the verification counts the rows', async () => {
    const dir = `${storeDir}-signed`;
    await mkdir(dir, { recursive: true });
    const keyFile = path.join(dir, 'manifest.key');
    const { privateKey } = generateKeyPairSync('ed25519');
    await writeFile(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const signedEnv = {
      ...env,
      DBOPS_BACKUP_DIR: path.join(dir, 'store'),
      DBOPS_MANIFEST_KEY: keyFile,
      DBOPS_TASK_QUEUE: `${queue}-signed`,
    };
    const signed = testConfig(signedEnv);
    const { report } = await adopt(signedEnv, '--from', specDir, '--database', db);
    expect(report.files.filter((f) => f.status === 'adopted').map((f) => f.backupId)).toEqual(
      [FILES.clean, FILES.verbose, FILES.old].map(idOf),
    );
    const shown = await dbops(signedEnv, 'backups', 'show', idOf(FILES.old));
    expect(shown.stdout).toContain('signature: verified with DBOPS_MANIFEST_KEY');
    expect(shown.stdout).toContain('rows not counted yet: run "dbops verify');
    const worker = await startTestWorker(signed);
    try {
      expect((await verify(signed, worker, idOf(FILES.old))).status).toBe('passed');
    } finally {
      await worker.stop();
    }
    const counted = await dbops(signedEnv, 'backups', 'show', idOf(FILES.old));
    expect(counted.stdout).toContain('signature: verified with DBOPS_MANIFEST_KEY');
    expect(counted.stdout).toMatch(/rows counted at \S+ by test-adopt-verify-/);
    await rm(dir, { recursive: true, force: true });
  }, 240_000);
});

describe('an adopted dump from a pg_dump without the \\restrict fix', () => {
  it('runs under a lock of its own: a shell command in it is refused by psql and never runs', async () => {
    const dir = `${specDir}-hostile`;
    const marker = path.join(dir, 'ran');
    const name = `${db}_20261106_020000.sql.gz`;
    await mkdir(dir, { recursive: true });
    const old = gunzipSync(await readFile(path.join(specDir, FILES.old))).toString('latin1');
    const hostile = old.replace(
      'SET statement_timeout = 0;',
      `SET statement_timeout = 0;\n\\! touch ${marker}`,
    );
    expect(hostile).toContain('\\! touch');
    await writeFile(path.join(dir, name), gzipSync(Buffer.from(hostile, 'latin1')));
    const { report } = await adopt(env, '--from', dir);
    expect(statusOf(report)).toEqual({ [name]: 'adopted' });
    const err = await verify(config, tw, idOf(name)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(rootMessage(err)).toMatch(/backslash commands are restricted/);
    await expect(stat(marker)).rejects.toThrow(/ENOENT/);
    await rm(dir, { recursive: true, force: true });
  }, 240_000);
});

describe('dbops backups adopt (from an S3 prefix)', () => {
  it("adopts the spec's files at the store's own prefix (its backups/), and one verifies", async () => {
    const bucket = createBackupStore(s3Config.storage);
    try {
      for (const name of [FILES.old, FILES.truncated])
        await bucket.put(name, createReadStream(path.join(specDir, name)));
    } finally {
      await bucket.close();
    }
    const { code, report } = await adopt(s3Env);
    expect(code).not.toBe(0);
    expect(report.source).toMatch(/^s3:\/\//);
    expect(statusOf(report)).toEqual({ [FILES.old]: 'adopted', [FILES.truncated]: 'unusable' });
    const s3Worker = await startTestWorker(s3Config);
    try {
      expect((await verify(s3Config, s3Worker, idOf(FILES.old))).status).toBe('passed');
    } finally {
      await s3Worker.stop();
    }
    const m = await manifestOf(s3Config, idOf(FILES.old));
    expect(m.adopted!.source).toMatch(new RegExp(`^s3://.*/${FILES.old}$`));
    expect(m.tables.length).toBeGreaterThan(0);
  }, 240_000);
});

async function sha256(file: string): Promise<string> {
  const { createHash } = await import('node:crypto');
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
