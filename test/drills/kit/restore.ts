/**
 * What the restore drills (5, 6, 15) share: their names, database, backup and teardown; restores
 * started and approved as the CLI does; `dbops db cleanup` as a user runs it; and what PostgreSQL
 * shows of a database (connectable, its dbops mark).
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Client as TemporalClient, Connection } from '@temporalio/client';
import { afterAll } from 'vitest';
import { restoreWorkflowId } from '../../../common/ids';
import { parseMark, type DbopsMark, type RestoreWorkflowInput } from '../../../common/restore';
import { connectClient } from '../../../src/client/connection';
import type { Config } from '../../../src/config';
import type { restoreWorkflow } from '../../../workflows/restore';
import { restoreApprovalUpdate, restoreStatusQuery } from '../../../workflows/restore-messages';
import { testConfig, testRun, uniqueSuffix } from '../../helpers/stack';
import {
  dropDatabasesLike,
  fingerprint,
  populate,
  sql,
  takeBackup,
  waitFor,
} from '../../integration/restore-fixtures';
import { dbops } from './dbops-cli';
import { closeSession, drillEnv } from './session';

export interface RestoreDrill {
  /** The drill's database, `t_<tag>_<suffix>` (its other databases start with this name). */
  readonly db: string;
  readonly backupDir: string;
  /** Where the drill's worker processes write (each appends). */
  readonly logFile: string;
  /** The dev stack with the backup's task queue: for the drill's own SQL, fingerprints and backup. */
  readonly config: Config;
  /** Settings of workers and CLI on task queue `drill-<tag>[-<queue>]-<suffix>`. */
  env(queue?: string): Record<string, string>;
  /**
   * Fills the database (`rows` users and the table db cleanup needs), waits for `workers`, then
   * connects and backs it up: the client, the backup's id and the data as backed up.
   */
  backUp(
    rows: number,
    workers: Promise<unknown>,
  ): Promise<{ client: TemporalClient; backupId: string; backedUp: Record<string, string> }>;
  /**
   * Changes the database after its backup (every other user deleted: the "old data" a restore
   * replaces) and copies it to `<db>_<copy>` for each of `copies`; returns the changed data.
   */
  changeAfterBackup(...copies: string[]): Promise<Record<string, string>>;
}

/**
 * A restore drill's names and setup; registers the file's afterAll, which kills the worker
 * processes, closes the client, drops the drill's databases and removes its backup folder.
 * `backupQueue` names the task queue the backup runs on (a worker of the drill must poll it).
 */
export function restoreDrill(tag: string, backupQueue?: string): RestoreDrill {
  const suffix = uniqueSuffix();
  const db = `t_${tag}_${suffix}`;
  const backupDir = path.join(testRun().backupDir, db);
  // The drill's database is one its workers manage (DBOPS_DATABASES): restores into it need no flag.
  const env = (queue?: string) => ({
    ...drillEnv(`drill-${tag}-${queue ? `${queue}-` : ''}${suffix}`, backupDir),
    DBOPS_DATABASES: db,
  });
  const config = testConfig(env(backupQueue));
  let connection: Connection | undefined;
  afterAll(async () => {
    await closeSession({ connection });
    await dropDatabasesLike(config, db);
    await rm(backupDir, { recursive: true, force: true });
  });
  return {
    db,
    backupDir,
    logFile: path.join(testRun().backupDir, `${db}-workers.log`),
    config,
    env,
    async backUp(rows, workers) {
      await populate(config, db, rows);
      await addBehaviorsTable(config, db);
      await workers;
      let client: TemporalClient;
      ({ client, connection } = await connectClient(config));
      const { backupId } = await takeBackup(client, config, db);
      return { client, backupId, backedUp: await fingerprint(config, db) };
    },
    async changeAfterBackup(...copies) {
      await sql(config, db, 'DELETE FROM users WHERE id % 2 = 0');
      const changed = await fingerprint(config, db);
      for (const copy of copies) await sql(config, undefined, `CREATE DATABASE ${db}_${copy} TEMPLATE ${db}`);
      return changed;
    },
  };
}

/** `dbops db cleanup --database <db> --json`: its rows by object (a database name; the first row of each). */
export async function cleanup(
  env: Record<string, string>,
  database: string,
): Promise<Map<string, { step: string; action: string; result: string }>> {
  const r = await dbops(env, 'db', 'cleanup', '--database', database, '--json');
  if (r.code !== 0) throw new Error(`dbops db cleanup exited ${r.code}: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as {
    rows: { step: string; object: string; action: string; result: string }[];
  };
  const byObject = new Map<string, { step: string; action: string; result: string }>();
  for (const row of out.rows) if (!byObject.has(row.object)) byObject.set(row.object, row);
  return byObject;
}

/** Starts a restore (as `dbops restore` does, with a test's short heartbeat timeout) and approves its plan. */
export async function startApprovedRestore(
  client: TemporalClient,
  queue: string,
  input: Pick<RestoreWorkflowInput, 'backup' | 'target'> & Partial<RestoreWorkflowInput>,
) {
  const { handle, status } = await startRestoreAwaitingApproval(client, queue, input);
  await handle.executeUpdate(restoreApprovalUpdate, {
    args: [{ decision: 'approve', by: 'bob', planHash: status.planHash! }],
  });
  return handle;
}

/** Starts a restore as startApprovedRestore does; resolves once it waits for approval, with its status. */
export async function startRestoreAwaitingApproval(
  client: TemporalClient,
  queue: string,
  input: Pick<RestoreWorkflowInput, 'backup' | 'target'> & Partial<RestoreWorkflowInput>,
) {
  const handle = await client.workflow.start<typeof restoreWorkflow>('restoreWorkflow', {
    taskQueue: queue,
    workflowId: `${restoreWorkflowId(input.target!, new Date())}-${Math.random().toString(36).slice(2, 8)}`,
    args: [
      {
        requestedBy: 'alice',
        allowUnlistedTarget: true,
        approvalTimeoutMs: 600_000,
        fourEyes: false,
        keepDays: 7,
        jobs: 2,
        heartbeatTimeoutMs: 5000,
        ...input,
      },
    ],
  });
  const status = await waitFor(
    'the restore to wait for approval',
    async () => {
      const s = await handle.query(restoreStatusQuery);
      return s.phase === 'awaiting-approval' ? s : undefined;
    },
    90_000,
  );
  return { handle, status };
}

/** What PostgreSQL shows of `db`: whether it exists, accepts connections, and its dbops mark. */
export async function databaseState(
  config: Config,
  db: string,
): Promise<{ exists: boolean; connectable: boolean; mark: DbopsMark | undefined; comment: string | null }> {
  const [row] = await sql<{ a: boolean; c: string | null }>(
    config,
    undefined,
    "SELECT datallowconn AS a, shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = $1",
    [db],
  );
  return {
    exists: row !== undefined,
    connectable: row?.a ?? false,
    mark: parseMark(row?.c),
    comment: row?.c ?? null,
  };
}

/** Number of sessions on `db` (other than this query's). */
export async function sessionsOn(config: Config, db: string): Promise<number> {
  const [r] = await sql<{ n: number }>(
    config,
    undefined,
    'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1',
    [db],
  );
  return r!.n;
}

/**
 * The part of dbops' schema `db cleanup` requires (partition retention reads user_behaviors), on a
 * database made by the restore fixtures' populate().
 */
async function addBehaviorsTable(config: Config, db: string): Promise<void> {
  await sql(
    config,
    db,
    `CREATE TABLE user_behaviors (id bigint, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
     CREATE TABLE user_behaviors_default PARTITION OF user_behaviors DEFAULT;`,
  );
}

/** Rows in `users` of `db`: the drills' quick data check beside the full fingerprint. */
export async function userRows(config: Config, db: string): Promise<number> {
  const [r] = await sql<{ n: number }>(config, db, 'SELECT count(*)::int AS n FROM users');
  return r!.n;
}
