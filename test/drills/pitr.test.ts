/**
 * Point-in-time recovery on a private PostgreSQL 18 (summarize_wal on; the shared dev server must
 * never be killed, and its base backups would carry every other test's databases): the WAL archiver
 * and base backups run through a real worker, then `dbops restore --to-time|--to-latest` recovers
 * a temporary PostgreSQL from the store, copies the database into a shadow, and swaps it in once
 * approved. Checked in the data: exactly the rows committed before the target, the chain combined
 * by pg_combinebackup, and a missing WAL segment refused by name.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackupStore } from '../../activities/storage';
import { rootMessage } from '../../common/failures';
import { walSegmentKey, walSegmentSidecarKey, type RecoveryTarget } from '../../common/pitr';
import type { RestoreResult, RestoreStatus } from '../../common/restore';
import { startBaseBackup } from '../../src/client/basebackup';
import { startPointInTimeRestore } from '../../src/client/pitr-restore';
import { decideRestore, pollRestoreStatus } from '../../src/client/restore';
import { startWalArchiver, stopWalArchiver } from '../../src/client/wal';
import type { Config } from '../../src/config';
import { uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import { sql, waitFor } from '../integration/restore-fixtures';
import { dbops } from './kit/dbops-cli';
import { pitrDrillConfig } from './kit/pitr';
import { closeAllPrivateServers, startPrivatePostgres, type PrivatePostgres } from './kit/private-servers';
import { recordDrill } from './kit/report';

const suffix = uniqueSuffix();
const db = 'app';
let pg: PrivatePostgres;
let tmp: string;
let config: Config;
let tw: TestWorker;
let systemId: string;
let minute = 0;
let cliEnv: Record<string, string>;

const q = <T = Record<string, unknown>>(text: string, params: unknown[] = [], database = db) =>
  sql<T>(config, database, text, params);
const marks = async () => (await q<{ id: number }>('SELECT id FROM marks ORDER BY id')).map((r) => r.id);

/** Closes the current WAL segment and waits until the archive holds it (its sidecar, written last). */
async function archiveCurrentSegment(): Promise<string> {
  const [row] = await q<{ seg: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS seg', [], 'postgres');
  const store = createBackupStore(config.storage);
  try {
    await waitFor(
      `${row!.seg} in the archive`,
      () => store.head(walSegmentSidecarKey(systemId, row!.seg)),
      60_000,
    );
  } finally {
    await store.close();
  }
  return row!.seg;
}

/** A point-in-time restore of `db` to `recovery`, approved once its plan is shown; the plan and result. */
async function restoreTo(
  recovery: RecoveryTarget,
): Promise<{ status: RestoreStatus; result: RestoreResult }> {
  const handle = await startPointInTimeRestore(tw.client, config, {
    recovery,
    database: db,
    requestedBy: 'drill',
    key: 'none',
    now: new Date(Date.UTC(2031, 0, 1, 0, minute++)),
  });
  const status = await pollRestoreStatus(handle, (s) => s.phase === 'awaiting-approval');
  if (status?.phase !== 'awaiting-approval') await handle.result(); // surfaces the failure
  await decideRestore(tw.client, handle.workflowId, {
    decision: 'approve',
    by: 'approver',
    planHash: status!.planHash!,
    key: 'none',
  });
  return { status: status!, result: await handle.result() };
}

beforeAll(async () => {
  pg = await startPrivatePostgres();
  ({ tmp, config } = await pitrDrillConfig(pg, 'pitr', suffix, db));
  tw = await startTestWorker(config);
  cliEnv = {
    ...pg.env,
    DBOPS_TASK_QUEUE: config.temporal.taskQueue,
    DBOPS_BACKUP_DIR: path.join(tmp, 'store'),
    DBOPS_DATABASES: db,
    DBOPS_SIGNING_KEY: 'none',
  };
  await q(`CREATE DATABASE ${db}`, [], 'postgres');
  await q(
    'CREATE TABLE marks (id int PRIMARY KEY, note text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())',
  );
  await q("INSERT INTO marks (id, note) SELECT g, 'before the base backup' FROM generate_series(1, 1000) g");
  systemId = (await startWalArchiver(tw.client, config, { pollMs: 200 })).systemId;
  await (await startBaseBackup(tw.client, config, { kind: 'full' })).result();
}, 180_000);

afterAll(async () => {
  if (tw && systemId) await stopWalArchiver(tw.client, systemId).catch(() => undefined);
  await tw?.stop();
  await closeAllPrivateServers();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('point-in-time restore', () => {
  it('to a time between two commits: exactly the rows committed before it, approved on a plan that shows them', async () => {
    await q("INSERT INTO marks (id, note) VALUES (1001, 'a')");
    const [a] = await q<{ t: Date }>('SELECT clock_timestamp() AS t');
    await new Promise((r) => setTimeout(r, 1_200));
    const [b] = await q<{ t: Date }>('SELECT clock_timestamp() AS t');
    await q("INSERT INTO marks (id, note) VALUES (1002, 'b')");
    await archiveCurrentSegment();
    const time = new Date((a!.t.getTime() + b!.t.getTime()) / 2).toISOString();

    const { status, result } = await restoreTo({ kind: 'time', time });
    const p = status.plan!.pointInTime!;
    expect(p.recoveryTarget).toBe(`time ${time}`);
    expect(Date.parse(p.lastTransactionAt!)).toBeLessThanOrEqual(Date.parse(time));
    expect(Date.parse(p.lastTransactionAt!)).toBeGreaterThanOrEqual(a!.t.getTime() - 1_000);
    expect(p).toMatchObject({ recoveredRows: 1001, liveTargetRows: 1002, rowDifference: -1 });
    expect(result.outcome).toBe('restored');
    expect(await marks()).toEqual([...Array.from({ length: 1001 }, (_, i) => i + 1)]);
    // The replaced database is kept for rollback, with both rows.
    const kept = await q<{ n: string }>('SELECT count(*) AS n FROM marks', [], result.preRestoreDatabase!);
    expect(Number(kept[0]!.n)).toBe(1002);
    recordDrill({
      drill: '20a. point-in-time restore between two commits',
      fault: `restore --to-time ${time}, 1.2 s after commit a and before commit b`,
      dataCheck: `rows 1..1001 (a kept, b gone); plan: last transaction ${p.lastTransactionAt}, ${p.rowDifference} rows vs live`,
      outcome: `restored from ${p.baseBackups.join(' + ')} and ${p.walSegments} WAL segments; old database kept as ${result.preRestoreDatabase}`,
    });
  }, 300_000);

  it('to an LSN between two commits: the first kept, the second not', async () => {
    await q("INSERT INTO marks (id, note) VALUES (1501, 'before the LSN')");
    const [at] = await q<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    await q("INSERT INTO marks (id, note) VALUES (1502, 'after the LSN')");
    await archiveCurrentSegment();
    const { status, result } = await restoreTo({ kind: 'lsn', lsn: at!.lsn });
    expect(status.plan!.pointInTime!.recoveryTarget).toBe(`LSN ${at!.lsn}`);
    expect(result.outcome).toBe('restored');
    expect((await marks()).slice(-2)).toEqual([1001, 1501]);
  }, 300_000);

  it('to the latest archived WAL through an incremental chain, combined by pg_combinebackup', async () => {
    await q("INSERT INTO marks (id, note) VALUES (2001, 'before the incremental backup')");
    await (
      await startBaseBackup(tw.client, config, { kind: 'incremental', now: new Date(Date.now() + 60_000) })
    ).result();
    await q("INSERT INTO marks (id, note) VALUES (2002, 'after the incremental backup')");
    await archiveCurrentSegment();
    const { status, result } = await restoreTo({ kind: 'latest' });
    expect(status.plan!.pointInTime!.baseBackups).toHaveLength(2);
    expect(result.outcome).toBe('restored');
    expect((await marks()).slice(-4)).toEqual([1001, 1501, 2001, 2002]);
  }, 300_000);

  it('the command line: a dry run shows the point in time and the row difference, and leaves nothing behind', async () => {
    const env = { ...cliEnv, DBOPS_TEMPORAL_NAMESPACE: config.temporal.namespace };
    const bad = await dbops(env, 'restore', '--to-time', '2026-12-05 10:30', '--database', db);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/not an RFC 3339 time with a zone, e\.g\. 2026-12-05T09:30:00Z/);
    const both = await dbops(env, 'restore', 'latest', '--to-latest', '--database', db);
    expect(both.stderr).toMatch(/give a backup id or --to-time\/--to-lsn\/--to-latest, not both/);

    const before = await marks();
    const dry = await dbops(env, 'restore', '--to-latest', '--database', db, '--target', db, '--dry-run');
    expect(dry.stderr, dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(
      new RegExp(`Restore ${db} from ${db} as it was at the end of the archived WAL`),
    );
    expect(dry.stdout).toMatch(
      /Point in time: the end of the archived WAL; recovered to LSN [0-9A-F]+\/[0-9A-F]+ from \S+-full \+ \S+-incremental/,
    );
    expect(dry.stdout).toMatch(/Recovered 1004 rows: \+0 rows compared with app now \(1004 rows\)/);
    expect(await marks()).toEqual(before);
    const left = await q<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datname LIKE 'app\\_\\_restore\\_%'",
      [],
      'postgres',
    );
    expect(left).toEqual([]);
  }, 300_000);

  it('a missing WAL segment is refused before anything is restored, naming the segment', async () => {
    await q("INSERT INTO marks (id, note) VALUES (3001, 'in the segment that goes missing')");
    const gone = await archiveCurrentSegment();
    await q("INSERT INTO marks (id, note) VALUES (3002, 'after it')");
    await archiveCurrentSegment();
    const store = createBackupStore(config.storage);
    try {
      await store.delete(walSegmentSidecarKey(systemId, gone));
      await store.delete(walSegmentKey(systemId, gone));
    } finally {
      await store.close();
    }
    const before = await marks();
    const refused = await restoreTo({ kind: 'latest' }).then(
      () => 'restored',
      (err: unknown) => rootMessage(err),
    );
    expect(refused).toMatch(new RegExp(`WAL segment ${gone} is missing from the archive`));
    expect(await marks()).toEqual(before);
  }, 300_000);
});
