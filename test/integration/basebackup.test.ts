import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, mkdir, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgClientConfig } from '../../activities/postgres/connection';
import { BASE_BACKUP_FILES, type BaseBackupManifest } from '../../common/basebackup';
import { baseBackupObjectKey } from '../../common/pitr';
import { startBaseBackup } from '../../src/client/basebackup';
import { dbops } from '../drills/kit/dbops-cli';
import { testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { freePort } from '../helpers/versitygw';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import { dropDatabase, pgTool } from './backup-helpers';

const suffix = uniqueSuffix();
const db = `t_basebackup_${suffix}`;
const taskQueue = `test-basebackup-${suffix}`;
let dir: string;
let tw: TestWorker;
let systemId: string;
const taken: { full?: BaseBackupManifest; incremental?: BaseBackupManifest } = {};

async function sql(database: string, text: string, params: unknown[] = []) {
  const c = new Client(pgClientConfig(tw.config.pg, database));
  await c.connect();
  try {
    return (await c.query(text, params)).rows as Record<string, unknown>[];
  } finally {
    await c.end();
  }
}

const stored = (id: string, file: string) => path.join(dir, baseBackupObjectKey(systemId, id, file));
const manifestOf = (id: string) =>
  JSON.parse(readFileSync(stored(id, BASE_BACKUP_FILES.manifest), 'utf8')) as BaseBackupManifest;
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
/** The CLI as a user runs it, against this file's worker, namespace and store. */
const cli = (...args: string[]) =>
  dbops(
    { DBOPS_TEMPORAL_NAMESPACE: testRun().namespace, DBOPS_TASK_QUEUE: taskQueue, DBOPS_BACKUP_DIR: dir },
    ...args,
  );

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 't_basebackup_'));
  const config = testConfig({ DBOPS_TASK_QUEUE: taskQueue, DBOPS_BACKUP_DIR: dir, DBOPS_DATABASES: db });
  tw = await startTestWorker(config);
  pgTool(config, 'createdb', [db]);
  await sql(db, 'CREATE TABLE marks (id int PRIMARY KEY, note text NOT NULL)');
  systemId = String(
    (await sql('postgres', 'SELECT system_identifier::text AS s FROM pg_control_system()'))[0]!.s,
  );
}, 60_000);

afterAll(async () => {
  await tw?.stop();
  if (tw) await dropDatabase(tw.config, db);
  await rm(dir, { recursive: true, force: true });
});

describe('base backups (pg_basebackup) of the dev stack PostgreSQL', () => {
  it('refuses an incremental base backup while the store has no full one, naming the fix', async () => {
    const r = await cli('basebackup', '--incremental', '--wait');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\[Refused\] no full base backup of cluster \d+ in .*take a full one first/);
    expect(existsSync(path.join(dir, 'pitr'))).toBe(false);
  });

  // Minutes, not seconds, when the shared server holds other tests' and benchmarks' large databases.
  it('takes a full and then an incremental base backup, each stored with both manifests and proven by pg_verifybackup', async () => {
    await sql(db, "INSERT INTO marks VALUES (1, 'before the full backup')");
    const full = await (await startBaseBackup(tw.client, tw.config, { kind: 'full' })).result();
    await sql(db, "INSERT INTO marks VALUES (2, 'before the incremental backup')");
    const incr = await (await startBaseBackup(tw.client, tw.config, { kind: 'incremental' })).result();
    await sql(db, "INSERT INTO marks VALUES (3, 'after the incremental backup')");

    expect(full).toMatchObject({ kind: 'full', systemIdentifier: systemId });
    expect(full.parentId).toBeUndefined();
    expect(incr).toMatchObject({ kind: 'incremental', parentId: full.id, systemIdentifier: systemId });
    for (const r of [full, incr]) {
      const m = manifestOf(r.id);
      // The archive and PostgreSQL's own manifest are whole objects whose size and digest the manifest records.
      expect(sha256(stored(r.id, BASE_BACKUP_FILES.archive))).toBe(m.sha256);
      expect(readFileSync(stored(r.id, BASE_BACKUP_FILES.archive)).length).toBe(m.sizeBytes);
      expect(sha256(stored(r.id, BASE_BACKUP_FILES.pgManifest))).toBe(m.pgManifest.sha256);
      expect(m.verification.verdict).toBe('passed');
      expect(m.verification.tool).toMatch(/^pg_verifybackup 1[789]/);
      expect(m.verification.checks).toMatch(/backup successfully verified/);
      expect(m).toMatchObject({
        id: r.id,
        systemIdentifier: systemId,
        startLsn: r.startLsn,
        stopLsn: r.stopLsn,
      });
      expect(m.rawBytes).toBeGreaterThan(m.sizeBytes);
      expect(m.serverVersion).toMatch(/^1[789]/);
      // The stored backup_manifest is the one inside the tar, and names this cluster.
      const inTar = execFileSync('sh', [
        '-c',
        'zstd -dc "$1" | tar -xOf - backup_manifest',
        'sh',
        stored(r.id, BASE_BACKUP_FILES.archive),
      ]);
      expect(inTar.equals(readFileSync(stored(r.id, BASE_BACKUP_FILES.pgManifest)))).toBe(true);
      expect(inTar.toString()).toContain(`"System-Identifier": ${systemId}`);
    }
    taken.full = manifestOf(full.id);
    taken.incremental = manifestOf(incr.id);
    expect(taken.incremental.parentId).toBe(full.id);
    // An incremental backup holds changed relation files as INCREMENTAL.<file> (block deltas for
    // pg_combinebackup); its size is not asserted: the shared server's other tests write meanwhile.
    const listing = execFileSync(
      'sh',
      ['-c', 'zstd -dc "$1" | tar -tf -', 'sh', stored(incr.id, BASE_BACKUP_FILES.archive)],
      {
        maxBuffer: 1 << 28,
      },
    ).toString();
    expect(listing).toMatch(/\/INCREMENTAL\.\d+/);
    expect(listing).toContain('backup_manifest');
  }, 600_000);

  it('lists both, oldest first, with the parent link (dbops basebackups list)', async () => {
    const json = await cli('basebackups', 'list', '--json');
    expect(json.code).toBe(0);
    const rows = JSON.parse(json.stdout) as {
      id: string;
      kind: string;
      parentId?: string;
      complete: boolean;
    }[];
    expect(rows.map((r) => [r.id, r.kind, r.parentId, r.complete])).toEqual([
      [taken.full!.id, 'full', undefined, true],
      [taken.incremental!.id, 'incremental', taken.full!.id, true],
    ]);
    const text = await cli('basebackups', 'list');
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`cluster ${systemId}`);
    const lines = text.stdout.split('\n');
    const incrLine = lines.find((l) => l.includes(taken.incremental!.id))!;
    expect(incrLine).toContain(taken.full!.id);
    expect(incrLine).toMatch(/yes \(pg_verifybackup/);
    expect(lines.findIndex((l) => l.startsWith(taken.full!.id))).toBeLessThan(lines.indexOf(incrLine));
  });

  it('round trip: full + incremental combined with pg_combinebackup start a PostgreSQL that has the rows written before the incremental', async () => {
    const { full, incremental } = taken;
    expect(full && incremental).toBeTruthy();
    const work = await mkdtemp(path.join(os.tmpdir(), 't_basebackup_restore_'));
    const bin = (tool: string) => path.join(tw.config.pg.binDir!, tool);
    // PostgreSQL refuses to run as root: the throwaway server runs as the stack's `postgres` user.
    const asRoot = process.getuid?.() === 0;
    const owner = asRoot
      ? {
          uid: Number(execFileSync('id', ['-u', 'postgres'])),
          gid: Number(execFileSync('id', ['-g', 'postgres'])),
        }
      : undefined;
    const run = (file: string, args: string[]) =>
      execFileSync(asRoot ? 'runuser' : file, asRoot ? ['-u', 'postgres', '--', file, ...args] : args, {
        env: { PATH: process.env.PATH },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    const data = path.join(work, 'combined');
    try {
      for (const m of [full!, incremental!]) {
        const into = path.join(work, m.id);
        await mkdir(into, { mode: 0o700 });
        execFileSync('sh', ['-c', 'zstd -dc "$1" | tar -xf - -C "$2"', 'sh', stored(m.id, m.file), into]);
      }
      if (owner) execFileSync('chown', ['-R', `${owner.uid}:${owner.gid}`, work]);
      run(bin('pg_combinebackup'), ['-o', data, path.join(work, full!.id), path.join(work, incremental!.id)]);
      expect((await readdir(data)).sort()).toEqual(
        expect.arrayContaining(['PG_VERSION', 'backup_label', 'pg_wal']),
      );
      const port = await freePort();
      expect([5432, 7233, 19530, 9000]).not.toContain(port);
      const socketDir = path.join(work, 'socket');
      await mkdir(socketDir, { mode: 0o700 });
      if (owner) chownSync(socketDir, owner.uid, owner.gid);
      const options = [
        `-p ${port}`,
        "-c listen_addresses='127.0.0.1'",
        `-c unix_socket_directories='${socketDir}'`,
        '-c summarize_wal=off',
        '-c archive_mode=off',
        '-c max_connections=20',
      ].join(' ');
      run(bin('pg_ctl'), [
        'start',
        '-w',
        '-t',
        '120',
        '-D',
        data,
        '-l',
        path.join(work, 'server.log'),
        '-o',
        options,
      ]);
      const c = new Client({ ...pgClientConfig(tw.config.pg, db), port });
      await c.connect();
      try {
        const rows = await c.query<{ id: number; note: string }>('SELECT id, note FROM marks ORDER BY id');
        expect(rows.rows).toEqual([
          { id: 1, note: 'before the full backup' },
          { id: 2, note: 'before the incremental backup' },
        ]);
        const sysid = await c.query<{ s: string }>(
          'SELECT system_identifier::text AS s FROM pg_control_system()',
        );
        expect(sysid.rows[0]!.s).toBe(systemId);
      } finally {
        await c.end();
      }
    } finally {
      // Stopped whenever it left a postmaster.pid, whatever failed before.
      if (existsSync(path.join(data, 'postmaster.pid')))
        run(bin('pg_ctl'), ['stop', '-w', '-m', 'fast', '-D', data]);
      await rm(work, { recursive: true, force: true });
    }
    expect(existsSync(work)).toBe(false);
  }, 600_000);
});
