/**
 * Drill 12: scratch space. A restore decompresses the archive into the scratch folder
 * (DBOPS_SCRATCH_DIR) and writes about the backup's raw size into the server that receives it.
 * With a scratch folder (a small tmpfs) that cannot hold the archive's raw size, restore and
 * verification are refused before any work, naming the folder and the bytes needed; the same for
 * a PostgreSQL server whose data directory (on a small tmpfs) lacks the room. And with a
 * verification server configured (DBOPS_VERIFY_PG*, a private PostgreSQL with a password), the
 * verification's scratch database is created there and never on the production server.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, rm, rmdir, statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createBackupStore } from '../../activities/storage';
import {
  type BackupManifest,
  type BackupVerification,
  manifestKey,
  verificationKey,
} from '../../common/backup';
import { verifyScratchDatabaseName, type VerifyWorkflowResult, type WorkMark } from '../../common/restore';
import { runCleanup } from '../../src/client/cleanup';
import { type Config, loadConfig } from '../../src/config';
import { testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import { databasesLike, dropDatabasesLike, fingerprint, sql } from '../integration/restore-fixtures';
import { wrapPgTools, type PgToolLog } from './kit/pg-tools';
import { backUpOnce, expectRefused, startRestoreOnce, startVerifyOnce } from './kit/refusals';
import { startPrivatePostgres, type PrivatePostgres } from './kit/private-servers';
import { recordDrill, stepLogger } from './kit/report';

const suffix = uniqueSuffix();
const db = `t_drill_scratch_${suffix}`;
const queue = `drill-scratch-${suffix}`;
const root = path.join(testRun().backupDir, `drill-scratch-${suffix}`);
/** The scratch folder: a tmpfs of its own. */
const scratchDir = path.join(os.tmpdir(), `t_drill_scratch_${suffix}`);
/** Where the verification server's data directory lives: another tmpfs. */
const pgFs = path.join(os.tmpdir(), `t_drill_pgfs_${suffix}`);
const PASSWORD = `verify-${suffix}`;
const mounted: string[] = [];

let verifyServer: PrivatePostgres;
let tools: PgToolLog;
let tw: TestWorker;
let config: Config;
let manifest: BackupManifest;
let before: Record<string, string>;

const step = stepLogger('drill 12');

async function mountTmpfs(dir: string, mib: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m,mode=0755`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(
      `drill 12 cannot mount a ${mib} MiB tmpfs at ${dir} (${String((err as { stderr?: Buffer }).stderr ?? err)}): it needs root with CAP_SYS_ADMIN`,
    );
  }
  mounted.push(dir);
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The bytes free that a refusal reports, checked to be below what it needs. */
function reportedFree(message: string, where: string): number {
  const m = new RegExp(`${escape(where)} has (\\d+) bytes \\([^)]*\\) free`).exec(message);
  expect(m, message).not.toBeNull();
  return Number(m![1]);
}

const freeBytes = async (dir: string) => {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
};

/** Fills `dir`'s filesystem until `leave` bytes are free; returns the ballast file. */
async function fillLeaving(dir: string, leave: number): Promise<string> {
  const ballast = path.join(dir, 'ballast');
  const size = (await freeBytes(dir)) - leave;
  execFileSync('fallocate', ['-l', String(size), ballast]);
  return ballast;
}

beforeAll(async () => {
  await mountTmpfs(scratchDir, 32);
  await mountTmpfs(pgFs, 160);
  [verifyServer, tools] = await Promise.all([
    startPrivatePostgres({ password: PASSWORD, parentDir: pgFs }),
    wrapPgTools(path.join(root, 'bin')),
  ]);
  config = testConfig({
    DBOPS_TASK_QUEUE: queue,
    DBOPS_STORAGE: 'local',
    DBOPS_BACKUP_DIR: path.join(root, 'store'),
    DBOPS_PG_BIN_DIR: tools.dir,
    DBOPS_SCRATCH_DIR: scratchDir,
    DBOPS_VERIFY_PGHOST: verifyServer.host,
    DBOPS_VERIFY_PGPORT: String(verifyServer.port),
    DBOPS_VERIFY_PGUSER: verifyServer.user,
    DBOPS_VERIFY_PGPASSWORD: PASSWORD,
  });
  tw = await startTestWorker(config);
  let backupId: string;
  ({ backupId, before } = await backUpOnce(tw, db, 20_000));
  const store = createBackupStore(config.storage);
  manifest = (await store.getJson<BackupManifest>(manifestKey(db, backupId)))!;
  await store.close();
  step(
    `verification server on ${verifyServer.port}, worker, backup ${backupId} (raw ${manifest.rawBytes} B)`,
  );
}, 120_000);

afterAll(async () => {
  await tw?.stop();
  await verifyServer?.close();
  for (const dir of mounted.reverse()) execFileSync('umount', [dir]);
  await Promise.all([scratchDir, pgFs].map((d) => rmdir(d).catch(() => undefined)));
  await dropDatabasesLike(config, db);
  await rm(root, { recursive: true, force: true });
});

/** The verification server, as dbops sees it (its own config section). */
const verifyConfig = () =>
  loadConfig({
    DBOPS_STACK_HOME: '/nonexistent',
    PGHOST: verifyServer.host,
    PGPORT: String(verifyServer.port),
    PGUSER: verifyServer.user,
    PGPASSWORD: PASSWORD,
    PGDATABASE: 'postgres',
  });

async function scratchDatabases(): Promise<{ production: string[]; verification: string[] }> {
  return {
    production: await databasesLike(config, `${db}__`),
    verification: await databasesLike(verifyConfig(), `${db}__`),
  };
}

async function recordedVerification(): Promise<BackupVerification | undefined> {
  const store = createBackupStore(config.storage);
  try {
    return await store.getJson<BackupVerification>(verificationKey(db, manifest.id));
  } finally {
    await store.close();
  }
}

/** What the archive check of a workflow reported about free space (its activity result in the history). */
async function spaceReport(handle: WorkflowHandle): Promise<string | undefined> {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = new Map(
    events
      .filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType?.name]),
  );
  for (const e of events) {
    const done = e.activityTaskCompletedEventAttributes;
    if (!done || scheduled.get(String(done.scheduledEventId)) !== 'checkBackupArchive') continue;
    const result = defaultPayloadConverter.fromPayload<{ space?: string }>(done.result!.payloads![0]!);
    return result.space;
  }
  return undefined;
}

const startVerify = (tag: string) => startVerifyOnce(tw, manifest.id, tag);

const results: string[] = [];

it('a scratch folder smaller than the raw size: restore and verify refused before any work', async () => {
  const ballast = await fillLeaving(scratchDir, Math.floor(manifest.rawBytes / 2));
  const says = new RegExp(
    `scratch folder ${escape(scratchDir)} has \\d+ bytes .*free; restoring backup ${manifest.id} needs ${manifest.rawBytes} bytes`,
  );
  const calls = (await tools.restoreCalls()).length;
  try {
    const refusal = await expectRefused(
      await startRestoreOnce(tw, manifest.id, suffix),
      'Misconfigured',
      says,
    );
    const free = reportedFree(refusal, `scratch folder ${scratchDir}`);
    expect(free).toBeLessThan(manifest.rawBytes);

    expect(await expectRefused(await startVerify('scratch'), 'Unavailable', says)).toMatch(
      /could not verify/,
    );

    // Before any work: no tool read the archive, nothing was written, nothing was created.
    expect((await tools.restoreCalls()).length).toBe(calls);
    expect(await readdir(scratchDir)).toEqual(['ballast']);
    expect(await scratchDatabases()).toEqual({ production: [], verification: [] });
    expect(await recordedVerification()).toBeUndefined();
    expect(await fingerprint(config, db)).toEqual(before);
    results.push(`scratch ${free} B free: restore Misconfigured before approval, verify could-not-verify`);
  } finally {
    await rm(ballast, { force: true });
  }
});

it('a verification server whose data directory lacks the raw size: refused, naming it', async () => {
  const ballast = await fillLeaving(pgFs, Math.floor(manifest.rawBytes / 2));
  try {
    const refusal = await expectRefused(
      await startVerify('server'),
      'Unavailable',
      new RegExp(
        `PostgreSQL server ${verifyServer.host}:${verifyServer.port}: data directory ${escape(verifyServer.dataDir)} has \\d+ bytes .*free; restoring backup ${manifest.id} into ${db}__verify_\\d{14} needs about ${manifest.rawBytes} bytes`,
      ),
    );
    const free = reportedFree(refusal, `data directory ${verifyServer.dataDir}`);
    expect(free).toBeLessThan(manifest.rawBytes);
    expect(await scratchDatabases()).toEqual({ production: [], verification: [] });
    expect(await recordedVerification()).toBeUndefined();
    results.push(`verify server ${free} B free: refused naming its data directory`);
  } finally {
    await rm(ballast, { force: true });
  }
});

it('with DBOPS_VERIFY_PG* the scratch database is on the verification server, never on production', async () => {
  const seen = { production: new Set<string>(), verification: new Set<string>() };
  let sampling = true;
  const samples = (async () => {
    let n = 0;
    while (sampling) {
      const now = await scratchDatabases();
      now.production.forEach((d) => seen.production.add(d));
      now.verification.forEach((d) => seen.verification.add(d));
      n++;
      await new Promise((r) => setTimeout(r, 25));
    }
    return n;
  })();
  const verify = await startVerify('passes');
  const result = (await verify.result()) as VerifyWorkflowResult;
  sampling = false;
  const n = await samples;

  expect(result.status).toBe('passed');
  // The space check ran against the verification server, whose free space is known (it is local).
  const space = await spaceReport(verify);
  expect(space).toMatch(
    new RegExp(
      `^scratch folder ${escape(scratchDir)}: .* free, .* needed; server ${verifyServer.host}:${verifyServer.port} data directory ${escape(verifyServer.dataDir)}: `,
    ),
  );
  expect([...seen.verification]).toEqual([result.scratchDatabase]);
  expect([...seen.production]).toEqual([]);
  expect(await scratchDatabases()).toEqual({ production: [], verification: [] });
  expect((await recordedVerification())?.status).toBe('passed');
  expect(await fingerprint(config, db)).toEqual(before);
  // The restored copy held every row: the comparison ran against the verification server.
  const rows = manifest.tables.filter((t) => t.kind !== 'partitioned').reduce((s, t) => s + t.rows, 0);
  expect(result.detail).toContain(`${rows} rows`);
  results.push(`DBOPS_VERIFY_PG*: passed, scratch DB on verify server (${n} samples), 0 on production`);

  // A test restore killed on the verification server leaves its scratch database there: db cleanup
  // looks on that server too, and drops only what carries dbops' mark. Cleanup's other steps need
  // the application's partitioned table: a database of its own that has one.
  const target = `${db}_c`;
  await sql(config, undefined, `CREATE DATABASE "${target}"`);
  await sql(
    config,
    target,
    'CREATE TABLE user_behaviors (id bigint, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at); CREATE TABLE user_behaviors_default PARTITION OF user_behaviors DEFAULT',
  );
  const old = new Date(Date.now() - 3 * 86_400_000);
  const leftover = verifyScratchDatabaseName(target, old);
  const lookAlike = verifyScratchDatabaseName(target, new Date(old.getTime() - 60_000));
  const mark: WorkMark = {
    dbops: 'verify',
    workflowId: `verify-drill12-${suffix}`,
    createdAt: old.toISOString(),
  };
  await sql(verifyConfig(), undefined, `CREATE DATABASE "${leftover}"`);
  await sql(verifyConfig(), undefined, `COMMENT ON DATABASE "${leftover}" IS '${JSON.stringify(mark)}'`);
  await sql(verifyConfig(), undefined, `CREATE DATABASE "${lookAlike}"`);
  const cleanup = await runCleanup(config, { database: target, dryRun: false });
  const where = ` on ${verifyServer.host}:${verifyServer.port}`;
  expect(cleanup.find((r) => r.object === `${leftover}${where}`)?.result).toMatch(/^done: /);
  expect(cleanup.find((r) => r.object === `${lookAlike}${where}`)?.action).toBe('keep');
  expect(await databasesLike(verifyConfig(), `${target}__`)).toEqual([lookAlike]);
  await sql(verifyConfig(), undefined, `DROP DATABASE "${lookAlike}"`);
  results.push(
    'db cleanup dropped a marked 3-day-old scratch DB on the verify server, kept an unmarked look-alike',
  );

  recordDrill({
    drill: '12. scratch space',
    fault: `scratch tmpfs, then the verify server's data tmpfs, filled to leave raw/2 (raw ${manifest.rawBytes} B); DBOPS_VERIFY_PG* = a private server with a password`,
    dataCheck: `refusals: 0 pg_restore/psql, scratch holds only ballast, 0 shadow/scratch DBs, no verification.json, source rows+md5 unchanged; pass: ${rows} rows restored on verify server`,
    outcome: results.join('; '),
  });
});
