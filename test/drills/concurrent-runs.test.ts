/**
 * Drill 9: the same operation started twice at once, as two people or two cron hosts would.
 * - Two `dbops backup --db X --wait` processes in the same minute (a backup's slot): one workflow,
 *   one backup in the store, both told the same backup id. (Two triggers of the backup Schedule
 *   are test/integration/backup-ops.test.ts; this is the CLI path, checked down to the data.)
 * - Two `dbops migrate` processes on a new database: both are made to wait on the migration lock
 *   (a third session holds Flyway's advisory lock, as a running Flyway would) and then race for
 *   it. One applies every migration, the other waits and finds nothing to do; the history holds
 *   each version once. (The in-process race is test/integration/migrations.test.ts.)
 */
import { readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pgClientConfig } from '../../activities/postgres/connection';
import { flywayLockKey } from '../../activities/postgres/migrations/lock';
import { migratorOptions } from '../../activities/postgres/migrate';
import { validate } from '../../activities/postgres/migrations/migrator';
import {
  createBackupStore,
  listBackupEntries,
  loadManifest,
  type BackupStore,
} from '../../activities/storage';
import { testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import { createPopulatedDatabase, dropDatabase, rowCounts } from '../integration/backup-helpers';
import { sql, waitFor } from '../integration/restore-fixtures';
import { dumpActivityOf } from './kit/dump-control';
import { dbops } from './kit/dbops-cli';
import { recordDrill } from './kit/report';
import { drillEnv } from './kit/session';

const suffix = uniqueSuffix();
const db = `t_drill_conc_${suffix}`;
const migDb = `t_drill_concmig_${suffix}`;
const queue = `drill-conc-${suffix}`;
const backupDir = path.join(testRun().backupDir, `drill-conc-${suffix}`);
const env = drillEnv(queue, backupDir);
const config = testConfig({ ...env, DBOPS_DATABASES: db });

let tw: TestWorker;
let store: BackupStore;

beforeAll(async () => {
  [tw] = await Promise.all([
    startTestWorker(config),
    createPopulatedDatabase(config, db, 20_000),
    sql(config, undefined, `CREATE DATABASE ${migDb}`),
  ]);
  store = createBackupStore(config.storage);
}, 120_000);

afterAll(async () => {
  await tw?.stop();
  await store?.close();
  await dropDatabase(config, db);
  await dropDatabase(config, migDb);
  await rm(backupDir, { recursive: true, force: true });
});

it('two `dbops backup` at once for the same minute: one workflow, one backup', async () => {
  // The slot is the minute the CLI starts the backup in: leave both processes 20 s of it.
  await waitFor('a minute with 20 s left', async () => new Date().getUTCSeconds() < 40, 30_000);
  const runs = await Promise.all([
    dbops(env, 'backup', '--db', db, '--wait', '--json'),
    dbops(env, 'backup', '--db', db, '--wait', '--json'),
  ]);
  for (const r of runs) expect(r.code, r.stderr).toBe(0);
  const [a, b] = runs.map((r) => (JSON.parse(r.stdout) as { workflowId: string; backupId: string }[])[0]!);
  expect(b!.workflowId).toBe(a!.workflowId);
  expect(b!.backupId).toBe(a!.backupId);

  const entries = await listBackupEntries(store, db);
  expect(entries.map((e) => [e.id, e.complete])).toEqual([[a!.backupId, true]]);
  const runsOfId = [];
  for await (const w of tw.client.workflow.list({ query: `WorkflowId = "${a!.workflowId}"` }))
    runsOfId.push(w);
  expect(runsOfId).toHaveLength(1);
  const dump = await dumpActivityOf(tw.client.workflow.getHandle(a!.workflowId));
  expect([dump.scheduled, dump.completed]).toEqual([1, 1]);
  const manifest = await loadManifest(store, a!.backupId);
  const live = await rowCounts(config, db, [...manifest.tables]);
  expect(Object.fromEntries(manifest.tables.map((t) => [`${t.schema}.${t.table}`, t.rows]))).toEqual(live);
  recordDrill({
    drill: '9. two backups at once',
    fault: 'two `dbops backup --db X --wait` processes started together in the same minute',
    dataCheck: `store: 1 backup folder, 1 manifest; ${manifest.tables.length} tables' counts = live (users ${live['public.users']}); 1 workflow run, 1 dump`,
    outcome: `both CLIs exited 0 reporting ${a!.backupId}: the second joined the first's run`,
  });
}, 90_000);

it('two `dbops migrate` at once: one applies, the other waits; the history has each version once', async () => {
  const files = readdirSync(config.migrations.dir).filter((f) => /^V.*\.sql$/.test(f));
  const holder = new Client(pgClientConfig(config.pg, migDb));
  await holder.connect();
  const key = flywayLockKey('public', 'flyway_schema_history').toString();
  await holder.query('SELECT pg_advisory_lock($1::bigint)', [key]);
  const runs = Promise.all([
    dbops(env, 'migrate', '--database', migDb),
    dbops(env, 'migrate', '--database', migDb),
  ]);
  // Both migrators are in: each has its lock session open and polls for the lock.
  await waitFor(
    'both migrators waiting for the lock',
    async () =>
      (
        await sql<{ n: number }>(
          config,
          undefined,
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'dbops-migrate-lock'",
          [migDb],
        )
      )[0]!.n === 2,
    60_000,
  );
  await holder.query('SELECT pg_advisory_unlock($1::bigint)', [key]);
  await holder.end();
  const done = await runs;

  for (const r of done) expect(r.code, r.stderr).toBe(0);
  for (const r of done) expect(r.stderr).toContain('waiting for another migrator to finish');
  const outputs = done.map((r) => r.stdout);
  const applied = outputs.filter((o) =>
    o.includes(`applied ${files.length} migrations to database ${migDb}`),
  );
  const idle = outputs.filter((o) => o.includes(`database ${migDb} is up to date`));
  expect([applied.length, idle.length]).toEqual([1, 1]);
  const history = await sql<{ version: string; n: number; ok: boolean }>(
    config,
    migDb,
    'SELECT version, count(*)::int AS n, bool_and(success) AS ok FROM flyway_schema_history GROUP BY version ORDER BY version',
  );
  expect(history).toEqual(files.map((f) => ({ version: f.slice(1, f.indexOf('__')), n: 1, ok: true })));
  const v = await validate(migratorOptions({ pg: config.pg, migrations: config.migrations }, migDb));
  expect(v.valid).toBe(true);
  recordDrill({
    drill: '9. two migrators at once',
    fault:
      'two `dbops migrate` processes, both held waiting on the Flyway lock by a third session, then released together',
    dataCheck: `flyway_schema_history: ${history.length} versions, each once, all successful; validate passes`,
    outcome: `one applied ${files.length} migrations, the other waited and found nothing to do; both exited 0`,
  });
}, 90_000);
