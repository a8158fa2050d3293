import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archivedSegmentsIn, until } from '../helpers/wal';
import { quoteIdent } from '../../activities/postgres/connection';
import { createBackupStore } from '../../activities/storage';
import { walArchiverWorkflowId } from '../../common/ids';
import {
  findSegmentGaps,
  walSegmentKey,
  walSegmentSidecarKey,
  type WalSegmentSidecar,
} from '../../common/pitr';
import { startWalArchiver, stopWalArchiver, walCheck, walStatus } from '../../src/client/wal';
import type { Config } from '../../src/config';
import { registry } from '../../src/worker/metrics';
import { stackServerEnv, testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import { sql } from './restore-fixtures';

const suffix = uniqueSuffix();
const db = `t_wal_${suffix}`;
const slot = `t_wal_${suffix}`;
/** A slot of the test's own that keeps the server's copy of every segment, to compare with the store's. */
const pin = `t_walpin_${suffix}`;
let tmp: string;
let config: Config;
let tw: TestWorker;
let systemId: string;

const settings = () => ({
  DBOPS_TASK_QUEUE: `test-wal-${suffix}`,
  DBOPS_BACKUP_DIR: path.join(tmp, 'store'),
  DBOPS_WAL_SLOT: slot,
  DBOPS_WAL_SPOOL_DIR: path.join(tmp, 'spool'),
});

const archived = () => archivedSegmentsIn(config, systemId);

/** Writes rows and ends the segment they are in: one more completed segment for the archiver. */
async function writeAndSwitch(rows: number): Promise<string> {
  await sql(
    config,
    db,
    `INSERT INTO t (note) SELECT repeat(md5(g::text), 4) FROM generate_series(1, ${rows}) g`,
  );
  const [r] = await sql<{ segment: string }>(
    config,
    undefined,
    'SELECT pg_walfile_name(pg_switch_wal()) AS segment',
  );
  return r!.segment;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function zstdDecompress(file: string): Promise<Buffer> {
  const r = await execa('zstd', ['-d', '-q', '-c', file], { encoding: 'buffer' });
  return Buffer.from(r.stdout);
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), `t_wal_${suffix}_`));
  config = testConfig(settings());
  await sql(config, undefined, `CREATE DATABASE ${quoteIdent(db)}`);
  await sql(config, db, 'CREATE TABLE t (id bigserial PRIMARY KEY, note text)');
  await sql(config, undefined, 'SELECT pg_create_physical_replication_slot($1, true)', [pin]);
  tw = await startTestWorker(config);
}, 120_000);

afterAll(async () => {
  await tw?.stop();
  // The test's slots: the archiver's guard and stream slots and the pin.
  await sql(
    config,
    undefined,
    `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = ANY($1) AND active_pid IS NOT NULL`,
    [[slot, `${slot}_recv`, pin]],
  );
  await new Promise((r) => setTimeout(r, 500));
  await sql(
    config,
    undefined,
    'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = ANY($1)',
    [[slot, `${slot}_recv`, pin]],
  );
  await sql(config, undefined, `DROP DATABASE IF EXISTS ${quoteIdent(db)} WITH (FORCE)`);
  await rm(tmp, { recursive: true, force: true });
}, 60_000);

describe('continuous WAL archiving with pg_receivewal', () => {
  it('stores each completed segment zstd-compressed with a sidecar whose SHA-256 matches the server’s segment', async () => {
    const started = await startWalArchiver(tw.client, config, { pollMs: 200, heartbeatTimeout: '5s' });
    systemId = started.systemId;
    expect(started.handle.workflowId).toBe(walArchiverWorkflowId(systemId));
    expect(started.started).toBe(true);
    // Streaming (the stream slot is in use) before the writes, so they land in completed segments.
    await until('pg_receivewal streaming', async () => {
      const [r] = await sql<{ active: boolean }>(
        config,
        undefined,
        'SELECT active FROM pg_replication_slots WHERE slot_name = $1',
        [`${slot}_recv`],
      );
      return r?.active;
    });
    const switched: string[] = [];
    for (let i = 0; i < 3; i++) switched.push(await writeAndSwitch(2000));
    const stored = await until('the switched segments in the store', async () => {
      const names = await archived();
      return switched.every((s) => names.includes(s)) && names;
    });
    expect(findSegmentGaps(stored)).toEqual([]);
    const store = createBackupStore(config.storage);
    try {
      for (const segment of switched) {
        const sidecar = (await store.getJson<WalSegmentSidecar>(walSegmentSidecarKey(systemId, segment)))!;
        const raw = await zstdDecompress(await store.localFile!(walSegmentKey(systemId, segment)));
        expect(raw.length).toBe(16 * 1024 * 1024);
        expect(sidecar).toMatchObject({
          segment,
          size: raw.length,
          sha256: sha256(raw),
          timeline: segment.slice(0, 8),
        });
        // The pin slot keeps the server's own copy: byte for byte what the store holds.
        const [server] = await sql<{ sha: string }>(
          config,
          undefined,
          `SELECT encode(sha256(pg_read_binary_file('pg_wal/' || $1)), 'hex') AS sha`,
          [segment],
        );
        expect(server!.sha).toBe(sidecar.sha256);
      }
    } finally {
      await store.close();
    }
    // Nothing stored stays in the spool.
    const spool = await readdir(path.join(tmp, 'spool', systemId, slot));
    expect(spool.filter((n) => switched.includes(n))).toEqual([]);
  }, 120_000);

  it('status shows the archiver, the last archived segment and the lag; the worker exports the lag gauges', async () => {
    // One sample right after a segment switch can count the switched segment's unused tail (the
    // server's position jumps to the next segment before pg_receivewal has the switch record): wait
    // for a status with the receiver caught up, as it is within moments.
    const s = await until('a heartbeat with the lag, the receiver caught up', async () => {
      const st = await walStatus(tw.client, config);
      return st.activity?.lag && (st.server.receivedLagBytes ?? Infinity) < 16 * 1024 * 1024 && st;
    });
    expect(s.state).toBe('RUNNING');
    expect(s.archived).toBeGreaterThanOrEqual(3);
    expect(s.archiver?.phase).toBe('archiving');
    expect(s.lastArchivedSegment).toBe((await archived()).at(-1));
    expect(s.server.streamSlot.active).toBe(true);
    expect(s.server.guardSlot.problem).toBeUndefined();
    expect(s.server.receivedLagBytes).toBeGreaterThanOrEqual(0);
    expect(s.server.receivedLagBytes).toBeLessThan(16 * 1024 * 1024);
    expect(s.activity!.lag!.storedLagSeconds).toBeGreaterThanOrEqual(0);
    const metrics = await registry.metrics();
    expect(metrics).toMatch(
      new RegExp(
        `^dbops_wal_archive_lag_bytes\\{system_identifier="${systemId}",stage="received"\\} \\d+`,
        'm',
      ),
    );
    expect(metrics).toMatch(
      new RegExp(
        `^dbops_wal_archive_lag_seconds\\{system_identifier="${systemId}",stage="stored"\\} [\\d.]+`,
        'm',
      ),
    );
  }, 60_000);

  it('check passes, then fails naming a segment deleted from the store (and the CLI exits non-zero)', async () => {
    const ok = await walCheck(config, { verify: true });
    expect(ok.problems).toEqual([]);
    expect(ok.verified).toBe(true);
    const names = await archived();
    const victim = names[names.length - 2]!;
    const file = path.join(tmp, 'store', walSegmentKey(systemId, victim));
    await rename(file, `${file}.aside`);
    await rename(`${file}.json`, `${file}.json.aside`);
    try {
      const bad = await walCheck(config);
      expect(bad.problems).toEqual([
        `timeline ${victim.slice(0, 8)}: missing segment ${victim} (between ${names[names.length - 3]} and ${names.at(-1)})`,
      ]);
      const cli = await execa('npx', ['tsx', 'src/cli/main.ts', 'wal', 'check'], {
        reject: false,
        extendEnv: false,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          ...stackServerEnv(),
          DBOPS_TEMPORAL_NAMESPACE: testRun().namespace,
          ...settings(),
        },
      });
      expect(cli.exitCode).toBe(1);
      expect(cli.stderr).toContain(`[IntegrityCheckFailed]`);
      expect(cli.stderr).toContain(`missing segment ${victim}`);
    } finally {
      await rename(`${file}.aside`, file);
      await rename(`${file}.json.aside`, `${file}.json`);
    }
    expect((await walCheck(config)).problems).toEqual([]);
  }, 120_000);

  it('an attempt that fails mid-way (its connection killed) is retried and resumes where it was: no segment lost', async () => {
    const before = await archived();
    const pending = await writeAndSwitch(1000);
    // pg_receivewal loses its connection: --no-loop makes it exit, the attempt fails, Temporal retries.
    await sql(
      config,
      undefined,
      'SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1',
      [`${slot}_recv`],
    );
    const after: string[] = [];
    for (let i = 0; i < 2; i++) after.push(await writeAndSwitch(1000));
    const names = await until(
      'the segments written around the failure',
      async () => {
        const n = await archived();
        return [pending, ...after].every((s) => n.includes(s)) && n;
      },
      90_000,
    );
    expect(names.length).toBeGreaterThan(before.length);
    expect(findSegmentGaps(names)).toEqual([]);
    const s = await walStatus(tw.client, config);
    expect(s.activity?.attempt).toBeGreaterThan(1);
    expect(s.activity?.lastFailure).toMatch(/pg_receivewal/);
    expect((await walCheck(config, { verify: true })).problems).toEqual([]);
  }, 150_000);

  it('a lost slot is recreated and reported as an event; archiving goes on', async () => {
    // An operator (or max_slot_wal_keep_size) takes the guard slot away while archiving.
    await sql(config, undefined, 'SELECT pg_drop_replication_slot($1)', [slot]);
    const s = await until('the slot-lost event', async () => {
      const st = await walStatus(tw.client, config);
      return st.archiver?.events.some((e) => e.kind === 'slot-lost') && st.server.streamSlot.active && st;
    });
    const event = s.archiver!.events.find((e) => e.kind === 'slot-lost')!;
    expect(event.message).toMatch(new RegExp(`replication slot ${slot} was missing: .*dbops wal check`));
    expect(s.server.guardSlot.problem).toBeUndefined();
    const next = await writeAndSwitch(500);
    await until('archiving after the new slot', async () => (await archived()).includes(next));
  }, 90_000);

  it('stop ends the archiver cleanly: pg_receivewal gone, every completed segment stored, gauges removed', async () => {
    expect(await stopWalArchiver(tw.client, systemId)).toBe(true);
    const [r] = await sql<{ active: boolean }>(
      config,
      undefined,
      'SELECT active FROM pg_replication_slots WHERE slot_name = $1',
      [`${slot}_recv`],
    );
    expect(r?.active).toBe(false);
    const spool = await readdir(path.join(tmp, 'spool', systemId, slot));
    expect(spool.filter((n) => /^[0-9A-F]{24}$/.test(n))).toEqual([]);
    expect((await walStatus(tw.client, config)).state).toBe('COMPLETED');
    expect(await registry.metrics()).not.toMatch(new RegExp(`system_identifier="${systemId}"`));
    expect(await stopWalArchiver(tw.client, systemId)).toBe(false);
  }, 60_000);
});
