/**
 * Drill 4: stored backups that are not what their manifest says — truncated, a flipped byte, a
 * manifest lying about the size, the digest or the format, and a manifest copied from another
 * database's backup. Verification and restore must refuse each before any byte reaches psql or
 * pg_restore. The proof: PostgreSQL's tools run through a thin wrapper (DBOPS_PG_BIN_DIR) that
 * logs every invocation and then execs the real binary, so the log shows each time pg_restore or
 * psql started; the workflow histories show no restore activity was ever scheduled; no shadow or
 * scratch database exists; the source database is unchanged.
 * (test/integration/restore.test.ts already refuses truncation, a flipped byte and a wrong digest
 * before approval; this drill adds the lies and the "before any byte" proof, for both workflows.)
 */
import { readFile, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createBackupStore, type BackupStore } from '../../activities/storage';
import {
  type BackupManifest,
  type BackupVerification,
  backupFileKey,
  makeBackupId,
  manifestKey,
  parseBackupId,
  verificationKey,
} from '../../common/backup';
import { s3Overrides, testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import { databasesLike, dropDatabasesLike, fingerprint } from '../integration/restore-fixtures';
import { wrapPgTools, type PgToolLog } from './kit/pg-tools';
import { backUpOnce, expectRefused, startRestoreOnce, startVerifyOnce } from './kit/refusals';
import { recordDrill, stepLogger } from './kit/report';

const suffix = uniqueSuffix();
const db = `t_drill_hostile_${suffix}`;
/** A second database whose backup folder holds a manifest copied from `db`'s backup. */
const otherDb = `t_drill_hostile_${suffix}_o`;
const root = path.join(testRun().backupDir, `drill-hostile-${suffix}`);
const backupDir = path.join(root, 'store');
const wrapDir = path.join(root, 'bin');
const queue = `drill-hostile-${suffix}`;
const config = () =>
  testConfig({
    DBOPS_TASK_QUEUE: queue,
    DBOPS_STORAGE: 'local',
    DBOPS_BACKUP_DIR: backupDir,
    DBOPS_PG_BIN_DIR: wrapDir,
  });
/** The same, with an S3 store under the run's prefix: the archive then streams (HashTap, zstd -t on stdin). */
const s3Config = () =>
  testConfig({
    DBOPS_TASK_QUEUE: `${queue}-s3`,
    ...s3Overrides(`drill-hostile-${suffix}`),
    DBOPS_PG_BIN_DIR: wrapDir,
  });

let local: TestWorker;
let s3: TestWorker;
let backupId: string;
let manifest: BackupManifest;
let realArchive: Buffer;
let before: Record<string, string>;
let tools: PgToolLog;

const step = stepLogger('drill 4');

beforeAll(async () => {
  tools = await wrapPgTools(wrapDir);
  // Both workers load the run's one workflow bundle (test/global-setup.ts).
  [local, s3] = await Promise.all([startTestWorker(config()), startTestWorker(s3Config())]);
  step('workers started');
  ({ backupId, before } = await backUpOnce(local, db, 3000));
  manifest = JSON.parse(await readFile(path.join(backupDir, db, backupId, 'manifest.json'), 'utf8'));
  realArchive = await readFile(path.join(backupDir, db, backupId, manifest.file));
  step('database populated, backup taken');
}, 120_000);

afterAll(async () => {
  await Promise.all([local?.stop(), s3?.stop()]);
  const bucket = createBackupStore(s3Config().storage);
  for (const o of await bucket.list('')) await bucket.delete(o.key);
  await bucket.close();
  await dropDatabasesLike(config(), db);
  await rm(root, { recursive: true, force: true });
});

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A corrupted copy: the archive's bytes and name, and what to change in the manifest. */
interface Damage {
  readonly archive?: Buffer;
  readonly file?: string;
  readonly manifest?: Partial<BackupManifest>;
}

interface Case {
  readonly name: string;
  readonly damage: (real: Buffer) => Damage;
  /** What the refusal must say. */
  readonly says: RegExp;
  /** Also through an S3 store (the streaming path). */
  readonly s3?: boolean;
  /** Stored in this database's folder instead of db's. */
  readonly database?: string;
}

const CASES: Case[] = [
  {
    name: 'truncated archive',
    damage: (real) => ({ archive: real.subarray(0, real.length - 4096) }),
    says: /is \d+ bytes, the manifest says \d+ \(truncated or replaced\)/,
  },
  {
    name: 'one flipped byte',
    damage: (real) => {
      const archive = Buffer.from(real);
      const i = Math.floor(archive.length / 2);
      archive[i] = archive[i]! ^ 0xff;
      return { archive };
    },
    says: /has SHA-256 [0-9a-f]{64}, expected/,
    s3: true,
  },
  {
    name: 'manifest lies about the size',
    damage: (real) => ({ manifest: { sizeBytes: real.length + 1 } }),
    says: /the manifest says \d+ \(truncated or replaced\)/,
    s3: true,
  },
  {
    name: 'manifest lies about the digest',
    damage: () => ({ manifest: { sha256: sha256(Buffer.from('another archive')) } }),
    says: /has SHA-256 [0-9a-f]{64}, expected/,
  },
  {
    // Everything consistent (size, digest, raw size) except that the archive is SQL, not pg_dump's.
    name: 'manifest says custom, archive is SQL',
    damage: () => {
      const sql = Buffer.from('DROP DATABASE postgres;\n-- PostgreSQL database dump complete\n');
      const archive = execFileSync('zstd', ['-q', '-c'], { input: sql });
      return {
        archive,
        manifest: { sizeBytes: archive.length, sha256: sha256(archive), rawBytes: sql.length },
      };
    },
    says: /is not a pg_dump custom archive: it starts with "DROP DATABASE po", not PGDMP/,
    s3: true,
  },
  {
    name: 'manifest says plain, archive is custom',
    damage: () => ({ file: 'dump.sql.zst', manifest: { format: 'plain', file: 'dump.sql.zst' } }),
    says: /does not end with "-- PostgreSQL database dump complete"/,
  },
  {
    name: 'manifest names another format than its file',
    damage: () => ({ manifest: { format: 'directory' } }),
    says: /names archive "dump\.pgcustom\.zst", but a directory zstd backup is dump\.pgdir\.tar\.zst/,
  },
  {
    // The real manifest, unchanged, in another database's backup folder: it names db's backup.
    name: "manifest copied from another database's backup",
    damage: () => ({ manifest: { id: 'REAL', database: 'REAL' } }),
    database: otherDb,
    says: new RegExp(`names backup "${db}_\\d{8}_\\d{6}", not ${otherDb}_\\d{8}_\\d{6}`),
    s3: true,
  },
];

/** Stores the corrupted copy as a new backup `<database>/<id>/` in `store`; returns its id. */
async function storeCopy(store: BackupStore, c: Case, n: number): Promise<string> {
  const database = c.database ?? db;
  const id = makeBackupId(database, new Date(Date.UTC(2020, 0, n)));
  const d = c.damage(realArchive);
  const m: BackupManifest = { ...manifest, id, database, ...d.manifest };
  // 'REAL': keep the real backup's own id and database (a copied manifest).
  const lie = d.manifest?.id === 'REAL' ? { ...m, id: manifest.id, database: manifest.database } : m;
  await store.put(
    backupFileKey(database, id, d.file ?? manifest.file),
    Readable.from([d.archive ?? realArchive]),
  );
  await store.putJson(manifestKey(database, id), lie);
  return id;
}

/** Runs verify, then restore, of each case's copy in `store` on `tw`, cases side by side; checks each refusal. */
async function refuseAll(tw: TestWorker, store: BackupStore, cases: Case[]): Promise<string[]> {
  return Promise.all(cases.map((c, i) => refuse(tw, store, c, i + 1)));
}

async function refuse(tw: TestWorker, store: BackupStore, c: Case, n: number): Promise<string> {
  const id = await storeCopy(store, c, n);
  const { database } = parseBackupId(id);
  const where = `${store.kind}: ${c.name}`;

  await expectRefused(await startVerifyOnce(tw, id, store.kind), 'VerificationFailed', c.says, where);
  // Recorded "failed" beside the copy: it leaves latest-verified and retention's good set.
  const recorded = await store.getJson<BackupVerification>(verificationKey(database, id));
  expect(recorded?.status, where).toBe('failed');

  const restore = await startRestoreOnce(tw, id, `${store.kind}-${n}`);
  const refusal = await expectRefused(restore, 'IntegrityCheckFailed', c.says, where);
  return `${where} -> ${refusal.replace(/^backup \S+: \S+ /, '').slice(0, 90)}`;
}

it('verify and restore refuse every hostile archive before psql or pg_restore starts', async () => {
  const started = Date.now();
  const baseline = await tools.restoreCalls();
  // The wrapper sees pg_restore when it runs: the backup's own re-read check listed the archive.
  expect(baseline.some((l) => l.startsWith('pg_restore --list'))).toBe(true);
  const localStore = createBackupStore(local.config.storage);
  const s3Store = createBackupStore(s3.config.storage);
  const s3Cases = CASES.filter((c) => c.s3);
  let rows: string[];
  try {
    rows = (await Promise.all([refuseAll(local, localStore, CASES), refuseAll(s3, s3Store, s3Cases)])).flat();
  } finally {
    await localStore.close();
    await s3Store.close();
  }

  // Not one pg_restore or psql since the backup, not one shadow or scratch database, data unchanged.
  expect(await tools.restoreCalls()).toEqual(baseline);
  expect(await databasesLike(config(), `${db}__`)).toEqual([]);
  expect(await databasesLike(config(), otherDb)).toEqual([]);
  expect(await fingerprint(config(), db)).toEqual(before);

  const total = CASES.length + s3Cases.length;
  recordDrill({
    drill: '4. hostile archives',
    fault: `${CASES.length} corrupted copies of a real backup (local; ${s3Cases.length} also on S3): truncated, flipped byte, manifest lying about size, digest, format x3, database`,
    dataCheck: `pg_restore/psql started: 0 (wrapper log); restore activities scheduled: 0; shadow/scratch DBs: 0; ${before.users?.split(':')[0]} users rows+md5 unchanged`,
    outcome: `${total}/${total} refused by verify (recorded failed) and restore (IntegrityCheckFailed, before approval) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  });
  console.log(`[drill 4] refusals:\n  ${rows.join('\n  ')}`);
});
