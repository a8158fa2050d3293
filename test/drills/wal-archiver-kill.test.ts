/**
 * Drill: the worker running the WAL archiver is SIGKILLed (with its pg_receivewal) while segments
 * it received are not yet in the store, and the next attempt runs on another worker with an empty
 * spool (another pod, its disk gone). pg_receivewal had already told the server it has those
 * segments; the guard slot (activities/postgres/wal/slots.ts) must still have kept them on the
 * server, so the new worker streams them again and the archive has no gap. On a private
 * PostgreSQL (its own cluster, so its archiver's workflow id is its own too).
 */
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { archivedSegmentsIn, until } from '../helpers/wal';
import { quoteIdent } from '../../activities/postgres/connection';
import { findSegmentGaps, nextWalSegment, parseLsn, segmentEndLsn, walSegmentKey } from '../../common/pitr';
import { connectClient } from '../../src/client/connection';
import { startWalArchiver, stopWalArchiver, walCheck } from '../../src/client/wal';
import type { Config } from '../../src/config';
import { testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { sql } from '../integration/restore-fixtures';
import { closeAllPrivateServers, startPrivatePostgres, type PrivatePostgres } from './kit/private-servers';
import { killAllWorkerProcesses, startWorkerProcess, type WorkerProcess } from './kit/worker-process';

const suffix = uniqueSuffix();
const db = `t_drill_wal_${suffix}`;
const slot = `t_drill_wal_${suffix}`;
const queue = `drill-wal-${suffix}`;
let tmp: string;
let config: Config;
let client: Client;
let connection: Connection;
let systemId: string;

let pg: PrivatePostgres;
const env = (spool: string) => ({
  ...pg.env,
  DBOPS_TASK_QUEUE: queue,
  DBOPS_TEMPORAL_NAMESPACE: testRun().namespace,
  DBOPS_STORAGE: 'local',
  DBOPS_BACKUP_DIR: path.join(tmp, 'store'),
  DBOPS_WAL_SLOT: slot,
  DBOPS_WAL_SPOOL_DIR: path.join(tmp, spool),
});

const archived = () => archivedSegmentsIn(config, systemId);

async function writeAndSwitch(): Promise<string> {
  await sql(config, db, `INSERT INTO t (note) SELECT md5(g::text) FROM generate_series(1, 2000) g`);
  const [r] = await sql<{ s: string }>(config, undefined, 'SELECT pg_walfile_name(pg_switch_wal()) AS s');
  return r!.s;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), `t_drill_wal_${suffix}_`));
  pg = await startPrivatePostgres();
  config = testConfig(env('spool-a'));
  await sql(config, undefined, `CREATE DATABASE ${quoteIdent(db)}`);
  await sql(config, db, 'CREATE TABLE t (id bigserial PRIMARY KEY, note text)');
  ({ client, connection } = await connectClient(config));
}, 60_000);

afterAll(async () => {
  await killAllWorkerProcesses();
  await connection?.close();
  // The slots and the database go with the private server.
  await closeAllPrivateServers();
  await rm(tmp, { recursive: true, force: true });
}, 60_000);

it('a worker killed with received but unstored segments loses nothing: another worker with an empty spool streams them again', async () => {
  const a: WorkerProcess = await startWorkerProcess(env('spool-a'));
  ({ systemId } = await startWalArchiver(client, config, { pollMs: 200, heartbeatTimeout: '3s' }));
  const first = await writeAndSwitch();
  await until('the first segment stored', async () => (await archived()).includes(first), 90_000);

  // The next two segments cannot be stored (a folder where each object goes), but pg_receivewal
  // receives them, flushes them into spool A and reports them to the server.
  const blocked = [nextWalSegment(first), nextWalSegment(nextWalSegment(first))];
  const blockers = blocked.map((s) => path.join(tmp, 'store', walSegmentKey(systemId, s)));
  for (const b of blockers) await mkdir(b, { recursive: true });
  for (let i = 0; i < 2; i++) await writeAndSwitch();
  await until(
    'both segments received in spool A',
    async () => {
      const names = await readdir(path.join(tmp, 'spool-a', systemId, slot)).catch((): string[] => []);
      return blocked.every((s) => names.includes(s));
    },
    90_000,
  );
  const [stream] = await sql<{ restart: string }>(
    config,
    undefined,
    'SELECT restart_lsn::text AS restart FROM pg_replication_slots WHERE slot_name = $1',
    [`${slot}_recv`],
  );
  // The server was told: the stream slot has moved past the first unstored segment, so a new
  // pg_receivewal started from that slot would begin after it, and nothing would keep it.
  expect(parseLsn(stream!.restart)).toBeGreaterThanOrEqual(segmentEndLsn(blocked[0]!));

  a.kill();
  await a.exited;
  for (const b of blockers) await rm(b, { recursive: true });
  // Another pod: its spool is empty. More WAL meanwhile.
  const during = await writeAndSwitch();
  await startWorkerProcess(env('spool-b'));
  const names = await until(
    'the unstored segments and the later one in the store',
    async () => {
      const n = await archived();
      return [...blocked, during].every((s) => n.includes(s)) && n;
    },
    90_000,
  );
  expect(findSegmentGaps(names)).toEqual([]);
  expect((await walCheck(config, { verify: true })).problems).toEqual([]);
  expect(await stopWalArchiver(client, systemId)).toBe(true);
}, 240_000);
