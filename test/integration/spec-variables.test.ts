/**
 * Issue 18: a team moving from the spec's backup.sh keeps its environment. A real `dbops worker`
 * and the `dbops` CLI run with only PATH, HOME, the scripts' variables (POSTGRES_*, BACKUP_DIR,
 * SLACK_WEBHOOK, RETENTION_DAYS) and the run's own Temporal address, namespace and task queue
 * (they have no script name): no PG* and no DBOPS_* setting of the dev stack. The backup must be
 * of POSTGRES_DB, land in BACKUP_DIR, reach the Slack receiver, and each process must warn once
 * about each script name it read. A second worker reads POSTGRES_PASSWORD for a private server
 * that checks passwords (scram-sha-256): pg_dump gets it, or the backup fails.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { VARIABLE_ALIASES } from '../../src/config';
import { dbops, withoutStackServers } from '../drills/kit/dbops-cli';
import { startPrivatePostgres, type PrivatePostgres } from '../drills/kit/private-servers';
import { startSlackReceiver, type SlackReceiver } from '../drills/kit/slack-receiver';
import { killAllWorkerProcesses, startWorkerProcess, type WorkerProcess } from '../drills/kit/worker-process';
import { stackVars, testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { createPopulatedDatabase, dropDatabase } from './backup-helpers';
import { waitFor } from './restore-fixtures';

const suffix = uniqueSuffix();
const db = `t_spec_vars_${suffix}`;
const stack = stackVars();
let backupDir: string;
let slack: SlackReceiver;
let worker: WorkerProcess;
let pg: PrivatePostgres | undefined;

/** The Temporal settings of this run: no script had them. */
const temporal = (queue: string) => ({
  DBOPS_TEMPORAL_ADDRESS: stack.DBOPS_TEMPORAL_ADDRESS,
  DBOPS_TEMPORAL_NAMESPACE: testRun().namespace,
  DBOPS_TASK_QUEUE: queue,
});

/** What backup.sh read, pointing at the dev stack's PostgreSQL. */
const scriptEnv = () => ({
  POSTGRES_HOST: stack.PGHOST,
  POSTGRES_PORT: stack.PGPORT,
  POSTGRES_USER: stack.PGUSER,
  POSTGRES_DB: db,
  BACKUP_DIR: backupDir,
  SLACK_WEBHOOK: slack.url,
  RETENTION_DAYS: '30',
});
const env = () => withoutStackServers({ ...scriptEnv(), ...temporal(`test-spec-vars-${suffix}`) });

/** The warning lines in `text`, by alias: each alias set must be named exactly once. */
function warningCounts(text: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const m of text.matchAll(/dbops: warning: ([A-Z_]+) is the \S+ name: set (\S+) instead/g)) {
    const alias = m[1] as keyof typeof VARIABLE_ALIASES;
    expect(m[2], alias).toBe(VARIABLE_ALIASES[alias].variable);
    counts[alias] = (counts[alias] ?? 0) + 1;
  }
  return counts;
}
const oncePerAlias = (names: readonly string[]) => Object.fromEntries(names.map((n) => [n, 1]));

interface BackupResult {
  database: string;
  outcome: string;
  location: string;
}

beforeAll(async () => {
  backupDir = await mkdtemp(path.join(os.tmpdir(), 't_spec_vars_'));
  slack = await startSlackReceiver(`/services/T0SPEC/B0SPEC/${suffix}`);
  await createPopulatedDatabase(testConfig(), db, 1_000);
  worker = await startWorkerProcess(env());
}, 150_000);

afterAll(async () => {
  await killAllWorkerProcesses();
  await slack?.close();
  await dropDatabase(testConfig(), db);
  await pg?.close();
  await rm(backupDir, { recursive: true, force: true });
});

it('with only the scripts’ variables, `dbops backup` backs up POSTGRES_DB into BACKUP_DIR and posts to SLACK_WEBHOOK', async () => {
  // No --db: POSTGRES_DB is the default database, as it was backup.sh's only one.
  const run = await dbops(env(), 'backup', '--wait', '--json');
  expect(run.code, run.stderr).toBe(0);
  const results = JSON.parse(run.stdout) as BackupResult[];
  expect(results).toHaveLength(1);
  expect(results[0]).toMatchObject({ database: db, outcome: 'succeeded' });
  expect(results[0]!.location.startsWith(backupDir + path.sep)).toBe(true);
  expect(existsSync(results[0]!.location)).toBe(true);

  const posted = await waitFor('the Slack message', async () =>
    slack.payloads.find((p) => p.text?.includes(`backup of ${db} succeeded`)),
  );
  expect(posted.text).toContain(db);

  const names = Object.keys(scriptEnv());
  expect(warningCounts(run.stderr)).toEqual(oncePerAlias(names));
  // One line each in the worker too, however often it loads its config.
  expect(warningCounts(worker.log())).toEqual(oncePerAlias(names));
}, 120_000);

it('`dbops config` names the script variables as the sources, the webhook redacted', async () => {
  const run = await dbops(env(), 'config', '--json');
  expect(run.code, run.stderr).toBe(0);
  const rows = Object.fromEntries(
    (JSON.parse(run.stdout) as { name: string; value: string; source: string }[]).map((r) => [r.name, r]),
  );
  expect(rows.PGHOST).toMatchObject({ value: stack.PGHOST, source: 'POSTGRES_HOST' });
  expect(rows.PGDATABASE).toMatchObject({ value: db, source: 'POSTGRES_DB' });
  expect(rows.DBOPS_DATABASES).toMatchObject({ value: db, source: 'POSTGRES_DB' });
  expect(rows.DBOPS_BACKUP_DIR).toMatchObject({ value: backupDir, source: 'BACKUP_DIR' });
  expect(rows.DBOPS_SLACK_WEBHOOK_URL).toMatchObject({ value: '<redacted>', source: 'SLACK_WEBHOOK' });
  expect(run.stdout + run.stderr).not.toContain(slack.url);
});

it('a script variable and its dbops variable set differently: refused, naming both', async () => {
  const run = await dbops({ ...env(), PGDATABASE: 'recsys' }, 'config');
  expect(run.code).not.toBe(0);
  expect(run.stderr).toMatch(/PGDATABASE and POSTGRES_DB \(the backup\.sh\/restore\.sh name\) are both set/);
  expect(run.stderr).toContain('unset POSTGRES_DB');
});

it('POSTGRES_PASSWORD alone reaches pg_dump on a server that checks it', async () => {
  const password = `spec-pw-${suffix}`;
  pg = await startPrivatePostgres({ password });
  await createPopulatedDatabase(testConfig(pg.env), db, 500);
  const privateEnv = withoutStackServers({
    ...scriptEnv(),
    POSTGRES_HOST: pg.host,
    POSTGRES_PORT: String(pg.port),
    POSTGRES_USER: pg.user,
    POSTGRES_PASSWORD: password,
    ...temporal(`test-spec-vars-pw-${suffix}`),
  });
  const pwWorker = await startWorkerProcess(privateEnv);
  const run = await dbops(privateEnv, 'backup', '--wait', '--json');
  expect(run.code, run.stderr).toBe(0);
  expect((JSON.parse(run.stdout) as BackupResult[])[0]).toMatchObject({ database: db, outcome: 'succeeded' });
  expect(warningCounts(run.stderr).POSTGRES_PASSWORD).toBe(1);
  expect(run.stdout + run.stderr + pwWorker.log()).not.toContain(password);
}, 180_000);
