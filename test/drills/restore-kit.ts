/**
 * What the restore drills (5, 6, 15) share: `dbops` run as a user runs it, restores started and
 * approved as the CLI does, and what PostgreSQL shows of a database (connectable, its dbops mark).
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import type { Client as TemporalClient } from '@temporalio/client';
import { restoreWorkflowId } from '../../common/ids';
import { parseMark, type DbopsMark, type RestoreWorkflowInput } from '../../common/restore';
import { REPO_ROOT, type Config } from '../../src/config';
import type { restoreWorkflow } from '../../workflows/restore';
import { restoreApprovalUpdate, restoreStatusQuery } from '../../workflows/restore-messages';
import { stackVars, testRun } from '../helpers/stack';
import { sql, waitFor } from '../integration/restore-fixtures';
import type { WorkerProcess } from './kit/worker-process';

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The settings a drill's workers and CLI share: its own task queue and local backup folder. */
export function drillEnv(queue: string, backupDir: string): Record<string, string> {
  return {
    DBOPS_TASK_QUEUE: queue,
    DBOPS_TEMPORAL_NAMESPACE: testRun().namespace,
    DBOPS_STORAGE: 'local',
    DBOPS_BACKUP_DIR: backupDir,
  };
}

/** `dbops <args>` as a user runs it (tsx, from source) with the dev stack's servers and `env`. */
export async function dbops(env: Record<string, string>, ...args: string[]): Promise<CliRun> {
  const vars = stackVars();
  return promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TMPDIR: process.env.TMPDIR,
      PGHOST: vars.PGHOST,
      PGPORT: vars.PGPORT,
      PGUSER: vars.PGUSER,
      PGDATABASE: vars.PGDATABASE,
      DBOPS_PG_BIN_DIR: vars.DBOPS_PG_BIN_DIR,
      DBOPS_STACK_HOME: vars.DBOPS_STACK_HOME,
      DBOPS_TEMPORAL_ADDRESS: vars.DBOPS_TEMPORAL_ADDRESS,
      DBOPS_TEMPORAL_UI_URL: vars.DBOPS_TEMPORAL_UI_URL,
      NO_COLOR: '1',
      ...env,
    },
  }).then(
    (ok) => ({ code: 0, stdout: ok.stdout, stderr: ok.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({
      code: e.code,
      stdout: e.stdout,
      stderr: e.stderr,
    }),
  );
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
  const handle = await client.workflow.start<typeof restoreWorkflow>('restoreWorkflow', {
    taskQueue: queue,
    workflowId: `${restoreWorkflowId(input.target!, new Date())}-${Math.random().toString(36).slice(2, 8)}`,
    args: [
      {
        requestedBy: 'alice',
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
  await handle.executeUpdate(restoreApprovalUpdate, {
    args: [{ decision: 'approve', by: 'bob', planHash: status.planHash! }],
  });
  return handle;
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
export async function addBehaviorsTable(config: Config, db: string): Promise<void> {
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

/**
 * Waits until one of `workers` runs pg_restore (a child in its process group) and SIGSTOPs that
 * pg_restore, so the restore is genuinely under way however small the backup: the drill then kills
 * the worker mid-restore at its own pace. Real processes and signals; nothing faked.
 */
export async function holdPgRestore(
  workers: readonly WorkerProcess[],
  timeoutMs = 90_000,
): Promise<WorkerProcess> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const ps = execFileSync('ps', ['-e', '-o', 'pid=,pgid=,stat=,comm='], { encoding: 'utf8' });
    for (const line of ps.split('\n')) {
      const [pid, pgid, stat, comm] = line.trim().split(/\s+/);
      const worker = workers.find((w) => w.pid === Number(pgid));
      if (!worker || comm !== 'pg_restore' || stat?.startsWith('Z')) continue;
      try {
        process.kill(Number(pid), 'SIGSTOP');
        return worker;
      } catch {
        // exited meanwhile: look again
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no worker ran pg_restore within ${timeoutMs} ms`);
}
