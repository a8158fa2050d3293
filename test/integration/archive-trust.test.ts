/**
 * Archives are untrusted input (issue 16, item 6), on the real stack: real backups, then forged
 * copies in the store (a manifest rewritten to plain format, copied from another backup or
 * database, a plain script with `\! touch <canary>` whose digest is wrong or right, manifests
 * unsigned or signed by another key). Each is refused twice: by the plan's archive check (a real
 * worker runs verifyBackupWorkflow; no restore activity is scheduled) and by the shadow restore
 * activity itself, called directly as if the archive were replaced after the plan. The proof that
 * nothing ran: the canary file never appears, although real psql runs each forged script's
 * command when given it (the control); PostgreSQL's tools run behind a logging wrapper
 * (test/drills/kit/pg-tools.ts) whose log shows no psql or pg_restore during the refusals.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { WorkflowFailedError } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgChildEnv, quoteIdent } from '../../activities/postgres/connection';
import { createRestoreActivities } from '../../activities/postgres/restore';
import {
  createBackupStore,
  listBackupEntries,
  withManifestKey,
  type BackupStore,
} from '../../activities/storage';
import { loadManifestKey, signManifest } from '../../activities/storage/manifest-key';
import {
  type BackupManifest,
  type BackupWorkflowResult,
  backupFileKey,
  makeBackupId,
  manifestKey,
} from '../../common/backup';
import { failureTypeOf, rootMessage } from '../../common/failures';
import { verifyScratchDatabaseName } from '../../common/restore';
import type { Config } from '../../src/config';
import { wrapPgTools, type PgToolLog } from '../drills/kit/pg-tools';
import { s3Overrides, stackVars, testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import { dropDatabasesLike, fingerprint, populate, sql } from './restore-fixtures';

const suffix = uniqueSuffix();
const db = `t_trust_${suffix}`;
const otherDb = `t_trust_${suffix}_o`;
const root = path.join(testRun().backupDir, `archive-trust-${suffix}`);
const canary = path.join(root, 'canary');
const keyFile = path.join(root, 'manifest.pem');
const otherKeyFile = path.join(root, 'other.pem');
const queue = `test-trust-${suffix}`;
const common = () => ({ DBOPS_PG_BIN_DIR: tools.dir, DBOPS_SCRATCH_DIR: path.join(root, 'scratch') });
const plainConfig = () =>
  testConfig({ ...common(), DBOPS_TASK_QUEUE: queue, DBOPS_BACKUP_DIR: path.join(root, 'store') });
const signedConfig = () =>
  testConfig({
    ...common(),
    DBOPS_TASK_QUEUE: `${queue}-signed`,
    DBOPS_BACKUP_DIR: path.join(root, 'signed'),
    DBOPS_MANIFEST_KEY: keyFile,
  });

let tools: PgToolLog;
let unsignedWorker: TestWorker;
let signedWorker: TestWorker;
let store: BackupStore;
let signedStore: BackupStore;
let original: Record<string, string>;
/** db's backups on the worker without a key: custom (the default) and plain. */
let custom: BackupManifest;
let plain: BackupManifest;
let plainSql: string;
let otherManifest: BackupManifest;
let signed: BackupManifest;
let forged = 0;
let attempt = 0;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const zstd = (text: string) => execFileSync('zstd', ['-q', '-c'], { input: Buffer.from(text) });

/** A real backup of `database` by `tw` (whose local store is root/`dir`): its manifest as stored. */
async function backUp(
  tw: TestWorker,
  dir: string,
  database: string,
  format?: 'plain',
): Promise<BackupManifest> {
  const r: BackupWorkflowResult = await tw.client.workflow.execute('backupWorkflow', {
    taskQueue: tw.config.temporal.taskQueue,
    workflowId: `test-trust-backup-${database}-${format ?? 'custom'}-${Date.now()}`,
    args: [{ database, trigger: 'manual', prune: false, verify: false, ...(format && { format }) }],
  });
  return JSON.parse(
    await readFile(path.join(root, dir, manifestKey(database, r.backupId)), 'utf8'),
  ) as BackupManifest;
}

/** Stores `archive` and the manifest `describe(id)` as a new backup folder of `database`; returns the id. */
async function forge(
  s: BackupStore,
  archive: Buffer,
  describe: (id: string) => object,
  database = db,
  file = 'dump.sql.zst',
): Promise<string> {
  const id = makeBackupId(database, new Date(Date.UTC(2020, 0, 1, 0, 0, ++forged)));
  await s.put(backupFileKey(database, id, file), Readable.from([archive]));
  await s.putJson(manifestKey(database, id), describe(id));
  return id;
}

/** A plain-format manifest (taken from `base`) that describes `archive` truthfully, for backup `id`. */
const truthful = (base: BackupManifest, archive: Buffer, sqlText: string) => (id: string) => ({
  ...base,
  id,
  format: 'plain',
  file: 'dump.sql.zst',
  sizeBytes: archive.length,
  sha256: sha256(archive),
  rawBytes: Buffer.byteLength(sqlText),
});

/** The dump's lines with `lines` inserted before line `at` (1-based). */
function insertLines(text: string, at: number, ...lines: string[]): string {
  const all = text.split('\n');
  all.splice(at - 1, 0, ...lines);
  return all.join('\n');
}

/**
 * The control: the stack's real psql, run as dbops would (-X, ON_ERROR_STOP) on `text` in a fresh
 * database, runs the forged command, so the canary's absence later proves that dbops refused.
 */
async function expectPsqlRunsCanary(text: string): Promise<void> {
  const control = `${db}_ctl`;
  await sql(plainConfig(), undefined, `DROP DATABASE IF EXISTS ${quoteIdent(control)} WITH (FORCE)`);
  await sql(plainConfig(), undefined, `CREATE DATABASE ${quoteIdent(control)}`);
  const file = path.join(root, 'control.sql');
  await writeFile(file, text);
  const psql = path.join(stackVars().DBOPS_PG_BIN_DIR!, 'psql');
  const env = { PATH: process.env.PATH ?? '', ...pgChildEnv(plainConfig().pg, control) };
  // A script may stop at an error after its command ran: the canary tells.
  spawnSync(psql, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', file], { env, stdio: 'ignore' });
  expect(existsSync(canary), 'psql itself runs the forged command').toBe(true);
  await rm(canary);
}

/** verifyBackupWorkflow (one round, one attempt) of `id` on `tw`: refused in its archive check. */
async function refusedByPlan(tw: TestWorker, id: string, says: RegExp): Promise<string> {
  const handle = await tw.client.workflow.start('verifyBackupWorkflow', {
    taskQueue: tw.config.temporal.taskQueue,
    workflowId: `test-trust-verify-${id}-${++attempt}`,
    args: [{ backupId: id, maximumAttempts: 1, rounds: 1 }],
  });
  const err = await handle.result().catch((e: unknown) => e);
  expect(err, id).toBeInstanceOf(WorkflowFailedError);
  expect(failureTypeOf(err), rootMessage(err)).toBe('VerificationFailed');
  expect(rootMessage(err)).toMatch(says);
  const history = await handle.fetchHistory();
  const scheduled = (history.events ?? []).map(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name,
  );
  expect(scheduled).toContain('checkBackupArchive');
  expect(scheduled).not.toContain('restoreBackupInto');
  return rootMessage(err);
}

/** The shadow restore activity itself (as after a plan that passed), with the worker's deps for `config`. */
async function restoreDirectly(config: Config, id: string): Promise<unknown> {
  const activities = createRestoreActivities({
    pg: config.pg,
    verifyPg: config.verifyPg,
    storage: withManifestKey(config.storage, config.manifestKeyFile),
    tempDir: config.scratchDir,
  });
  const scratch = verifyScratchDatabaseName(db, new Date(Date.UTC(2030, 0, 1, 0, 0, ++attempt)));
  const restore = (input: { backupId: string; database: string; jobs: number }) =>
    activities.restoreBackupInto(input);
  return new MockActivityEnvironment().run(restore, { backupId: id, database: scratch, jobs: 2 }).then(
    () => ({ restored: scratch }),
    (err: unknown) => err,
  );
}

async function refusedByRestore(config: Config, id: string, says: RegExp): Promise<void> {
  const err = await restoreDirectly(config, id);
  expect(failureTypeOf(err), rootMessage(err)).toBe('IntegrityCheckFailed');
  expect(rootMessage(err)).toMatch(says);
}

/** Runs `refusals` and proves that no psql or pg_restore started meanwhile and the canary is absent. */
async function withoutTools(refusals: () => Promise<void>): Promise<void> {
  const before = await tools.restoreCalls();
  await refusals();
  expect(await tools.restoreCalls()).toEqual(before);
  expect(existsSync(canary), 'the forged command never ran').toBe(false);
}

beforeAll(async () => {
  await mkdir(path.join(root, 'scratch'), { recursive: true });
  tools = await wrapPgTools(path.join(root, 'bin'));
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', keyFile]);
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', otherKeyFile]);
  await Promise.all([populate(plainConfig(), db, 800), populate(plainConfig(), otherDb, 200)]);
  original = await fingerprint(plainConfig(), db);
  [unsignedWorker, signedWorker] = await Promise.all([
    startTestWorker(plainConfig()),
    startTestWorker(signedConfig()),
  ]);
  // Backup ids are to the second: two backups of db in one store are taken a second apart.
  [custom, otherManifest, signed] = await Promise.all([
    backUp(unsignedWorker, 'store', db),
    backUp(unsignedWorker, 'store', otherDb),
    backUp(signedWorker, 'signed', db),
  ]);
  await new Promise((r) => setTimeout(r, 1100));
  plain = await backUp(unsignedWorker, 'store', db, 'plain');
  expect(plain.format).toBe('plain');
  store = createBackupStore(unsignedWorker.config.storage);
  signedStore = createBackupStore(signedWorker.config.storage);
  const archive = await readFile(path.join(root, 'store', db, plain.id, plain.file));
  plainSql = execFileSync('zstd', ['-d', '-q', '-c'], { input: archive }).toString('utf8');
}, 300_000);

afterAll(async () => {
  await Promise.all([unsignedWorker?.stop(), signedWorker?.stop()]);
  await Promise.all([store?.close(), signedStore?.close()]);
  await dropDatabasesLike(plainConfig(), db);
  await rm(root, { recursive: true, force: true });
});

describe('archives are untrusted input', () => {
  it("a real plain backup carries pg_dump's \\restrict lock, passes the scan and restores through psql -f", async () => {
    expect(plainSql).toMatch(/^\\restrict [A-Za-z0-9]+$/m);
    expect(plain.integrity.checks).toContain('\\restrict over every line');
    const before = (await tools.restoreCalls()).length;
    const r = await restoreDirectly(unsignedWorker.config, plain.id);
    expect(r).toMatchObject({ restored: expect.any(String) as string });
    const calls = (await tools.restoreCalls()).slice(before);
    expect(calls).toEqual([
      expect.stringMatching(/^psql -X -q -v ON_ERROR_STOP=1 --no-password -f \S+dump\.sql$/),
    ]);
    const restored = (r as { restored: string }).restored;
    expect(await fingerprint(plainConfig(), restored)).toEqual(original);
  });

  it('(a) a manifest rewritten to plain format over a plain script with \\! touch and the original digest: refused on the digest', async () => {
    const script = `\\! touch ${canary}\n${plainSql}`;
    await expectPsqlRunsCanary(script);
    const archive = zstd(script);
    const id = await forge(store, archive, (i) => ({
      ...truthful(custom, archive, script)(i),
      sha256: custom.sha256,
    }));
    await withoutTools(async () => {
      await refusedByPlan(
        unsignedWorker,
        id,
        new RegExp(`has SHA-256 [0-9a-f]{64}, expected ${custom.sha256}`),
      );
      await refusedByRestore(
        unsignedWorker.config,
        id,
        new RegExp(
          `archive has ${archive.length} bytes with SHA-256 [0-9a-f]{64}, the manifest says .* ${custom.sha256}: it was replaced`,
        ),
      );
    });
  });

  it('(b) a manifest copied from another backup or naming another database: refused before the archive is read', async () => {
    const script = `\\! touch ${canary}\n${plainSql}`;
    const archive = zstd(script);
    // The real plain backup's manifest, unchanged, in another backup folder of the same database.
    const copied = await forge(store, archive, () => ({ ...truthful(plain, archive, script)(plain.id) }));
    // otherDb's real manifest, renamed to this folder's id but still naming its own database.
    const otherDbs = await forge(store, archive, (i) => ({
      ...truthful(otherManifest, archive, script)(i),
      id: i,
    }));
    await withoutTools(async () => {
      const another = new RegExp(
        `manifest\\.json names backup "${plain.id}", not ${copied}; it was edited or copied`,
      );
      await refusedByPlan(unsignedWorker, copied, another);
      await refusedByRestore(unsignedWorker.config, copied, another);
      const database = new RegExp(
        `manifest\\.json names database "${otherDb}", not ${db}; it was edited or copied`,
      );
      await refusedByPlan(unsignedWorker, otherDbs, database);
      await refusedByRestore(unsignedWorker.config, otherDbs, database);
    });
  });

  it('(c) plain scripts with \\! touch whose size and digest ARE in the manifest: refused by the \\restrict scan, naming the line', async () => {
    const key = /^\\restrict ([A-Za-z0-9]+)$/m.exec(plainSql)![1]!;
    const restrictAt = plainSql.split('\n').indexOf(`\\restrict ${key}`) + 1;
    const cases = [
      {
        name: 'no \\restrict',
        script: `\\! touch ${canary}\n${plainSql.replace(/^\\(un)?restrict .*$/gm, '')}`,
        line: 1,
      },
      {
        name: '\\unrestrict mid-line',
        script: insertLines(
          plainSql,
          restrictAt + 1,
          `SELECT 1; \\unrestrict ${key}`,
          `\\! touch ${canary}`,
          `\\restrict ${key}`,
        ),
        line: restrictAt + 1,
      },
      {
        name: 'a command after \\r in a comment',
        script: insertLines(plainSql, 2, `-- note\r\\! touch ${canary}`),
        line: 3,
      },
    ];
    for (const c of cases) await expectPsqlRunsCanary(c.script);
    const ids: string[] = [];
    for (const c of cases) {
      const archive = zstd(c.script);
      ids.push(await forge(store, archive, truthful(plain, archive, c.script)));
    }
    await withoutTools(async () => {
      for (const [i, c] of cases.entries()) {
        const says = new RegExp(`plain dump that line ${c.line} (comes before any|holds "\\\\unrestrict")`);
        const plan = await refusedByPlan(unsignedWorker, ids[i]!, says);
        expect(plan, c.name).toMatch(/psql never runs it/);
        await refusedByRestore(
          unsignedWorker.config,
          ids[i]!,
          new RegExp(`the plain dump line ${c.line} .*; psql was not started`),
        );
      }
    });
  });

  it('(d) with DBOPS_MANIFEST_KEY: unsigned and other-key manifests are refused, a correctly signed one restores', async () => {
    const key = loadManifestKey(keyFile);
    const other = loadManifestKey(otherKeyFile);
    expect(signed.signature).toMatchObject({ alg: 'ed25519', keyId: key.keyId });
    expect(custom.signature).toBeUndefined();
    const archive = await readFile(path.join(root, 'signed', db, signed.id, signed.file));
    const { signature: _s, ...unsigned } = signed;
    const unsignedId = await forge(signedStore, archive, (id) => ({ ...unsigned, id }), db, signed.file);
    const otherId = await forge(
      signedStore,
      archive,
      (id) => signManifest({ ...unsigned, id }, other),
      db,
      signed.file,
    );
    await withoutTools(async () => {
      const unsignedSays = new RegExp(
        `is unsigned, but this worker requires manifests signed by its DBOPS_MANIFEST_KEY \\(key ${key.keyId}\\)`,
      );
      await refusedByPlan(signedWorker, unsignedId, unsignedSays);
      await refusedByRestore(signedWorker.config, unsignedId, unsignedSays);
      const otherSays = new RegExp(
        `is signed by key ${other.keyId}, not by this worker's DBOPS_MANIFEST_KEY \\(key ${key.keyId}\\)`,
      );
      await refusedByPlan(signedWorker, otherId, otherSays);
      await refusedByRestore(signedWorker.config, otherId, otherSays);
    });
    // The worker's own signed manifest: the shadow restore and a whole verification pass.
    const r = await restoreDirectly(signedWorker.config, signed.id);
    expect(r).toMatchObject({ restored: expect.any(String) as string });
    expect(await fingerprint(plainConfig(), (r as { restored: string }).restored)).toEqual(original);
    const verified = await signedWorker.client.workflow.execute('verifyBackupWorkflow', {
      taskQueue: signedWorker.config.temporal.taskQueue,
      workflowId: `test-trust-verify-signed-${++attempt}`,
      args: [{ backupId: signed.id, maximumAttempts: 1, rounds: 1 }],
    });
    expect(verified).toMatchObject({ status: 'passed' });
    const entries = await listBackupEntries(signedStore, db);
    expect(entries.find((e) => e.id === signed.id)?.verification?.status).toBe('passed');
  });

  it('(e) from an S3 store, where the archive streams: the real plain backup restores, a forged one never reaches psql', async () => {
    const s3Config = testConfig({ ...common(), ...s3Overrides(`archive-trust-${suffix}`) });
    const s3 = createBackupStore(s3Config.storage);
    try {
      const archive = await readFile(path.join(root, 'store', db, plain.id, plain.file));
      await s3.put(backupFileKey(db, plain.id, plain.file), Readable.from([archive]));
      await s3.putJson(manifestKey(db, plain.id), plain);
      const r = await restoreDirectly(s3Config, plain.id);
      expect(await fingerprint(plainConfig(), (r as { restored: string }).restored)).toEqual(original);
      const script = `\\! touch ${canary}\n${plainSql}`;
      const forgedArchive = zstd(script);
      const id = await forge(s3, forgedArchive, truthful(plain, forgedArchive, script));
      await withoutTools(() => refusedByRestore(s3Config, id, /the plain dump line 1 comes before any/));
    } finally {
      for (const o of await s3.list('')) await s3.delete(o.key);
      await s3.close();
    }
  });
});
