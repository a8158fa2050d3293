/**
 * Restore benchmark (not a test): on one ~2 GB seed-shaped database, in one run, times
 *   - the spec's way: `gunzip -c dump.sql.gz | psql` into a fresh database (the dump is made first, untimed)
 *   - `pg_restore -j 2` alone of a custom archive pg_dump wrote to a file (data offsets recorded:
 *     stock pg_restore's best case), into a fresh database
 *   - dbops restore end to end, from the approval to the result: download + SHA-256 + decompress,
 *     data offsets, pg_restore -j into the shadow (planner statistics from the archive), verify
 *     against the manifest, cut-over
 * and prints medians, the cut-over window, the worker's peak RSS and the ratios against the goals.
 * With --age also dbops restore end to end of the same database backed up encrypted with age (a
 * worker with DBOPS_BACKUP_AGE_RECIPIENTS and _IDENTITY of a key pair made here): the cost of
 * decryption, against the unencrypted dbops restore of the same run.
 *
 *   npx tsx bench/restore.ts [--db bench_restore] [--runs 1] [--prepare] [--age] [--dbops-only]
 * --dbops-only skips the spec's way and pg_restore alone (for the encryption cost, dbops against dbops).
 * Run it in the background: `nohup npx tsx bench/restore.ts > bench/out/restore.txt 2>&1 &`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BackupWorkflowResult } from '../common/backup';
import type { RestoreStatus } from '../common/restore';
import type { Client } from '@temporalio/client';
import type { Config } from '../src/config';
import { startRestore } from '../src/client/restore';
import { connectClient } from '../src/client/connection';
import { testConfig, uniqueSuffix } from '../test/helpers/stack';
import {
  ageKeyPair,
  hasFlag,
  median,
  opt,
  pgBin,
  pgEnvFor,
  secs,
  inBenchRun,
  startBenchWorker,
  timedShell,
  vars,
} from './lib';
import { restoreApprovalUpdate, restoreStatusQuery } from '../workflows/restore-messages';

const DB = opt('db', 'bench_restore');
const RUNS = Number(opt('runs', '1'));
const suffix = uniqueSuffix();
const bin = pgBin;
const pgEnv = pgEnvFor('postgres');
const sh = timedShell(pgEnv);
const q = (sql: string) =>
  spawnSync(bin('psql'), ['-XAtc', sql], { env: pgEnv, encoding: 'utf8' }).stdout.trim();

function prepare(): void {
  const seed = spawnSync('npm', ['run', '-s', 'dbops', '--', 'db', 'seed', '--help'], { encoding: 'utf8' });
  if (seed.status === 0 && /seed/.test(seed.stdout)) {
    sh(
      `npm run -s dbops -- db init --database ${DB} && npm run -s dbops -- db seed --scale 1 --database ${DB}`,
    );
  } else {
    console.log(
      'dbops db seed not available: generating the seed-shaped database with bench/backup-seed.sql',
    );
    sh(
      `${bin('dropdb')} --if-exists ${DB} && ${bin('createdb')} ${DB} && PGDATABASE=${DB} ${bin('psql')} -q -v ON_ERROR_STOP=1 -f bench/backup-seed.sql`,
    );
  }
}

const main = () => inBenchRun(mainInRun);

async function mainInRun() {
  if (hasFlag('prepare') || q(`SELECT 1 FROM pg_database WHERE datname = '${DB}'`) !== '1') prepare();
  const size = Number(q(`SELECT pg_database_size('${DB}')`));
  console.log(`database ${DB}: ${(size / 1e9).toFixed(2)} GB; runs: ${RUNS}; cores: ${os.cpus().length}`);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'bench-restore-'));
  const env: Record<string, string> = {
    ...vars,
    DBOPS_TASK_QUEUE: `bench-restore-${suffix}`,
    DBOPS_STORAGE: 'local',
    DBOPS_BACKUP_DIR: path.join(tmp, 'store'),
    DBOPS_DATABASES: DB,
    DBOPS_RESTORE_JOBS: opt('jobs', '2'),
  };
  const config = testConfig(env);
  const worker = await startBenchWorker(env);
  const { client, connection } = await connectClient(config);
  const target = `${DB}_target`;
  const scratch = `${DB}_baseline`;
  const times = {
    spec: [] as number[],
    pgRestore: [] as number[],
    dbops: [] as number[],
    check: [] as number[],
  };
  const cutovers: number[] = [];
  let age: Awaited<ReturnType<typeof startEncryptedSide>> | undefined;
  try {
    // Inputs, untimed: the dbops backup, the spec's gzip dump, the decompressed custom archive.
    const backup: BackupWorkflowResult = await client.workflow.execute('backupWorkflow', {
      taskQueue: config.temporal.taskQueue,
      workflowId: `bench-restore-backup-${suffix}`,
      args: [{ database: DB, trigger: 'manual', prune: false }],
    });
    console.log(`backup ${backup.backupId}: ${(backup.sizeBytes / 1e6).toFixed(0)} MB`);
    const baselines = !hasFlag('dbops-only');
    if (baselines) {
      sh(`PGDATABASE=${DB} ${bin('pg_dump')} -Fp --no-owner --no-privileges | gzip -6 > ${tmp}/spec.sql.gz`);
      sh(`PGDATABASE=${DB} ${bin('pg_dump')} -Fc -Z0 -f ${tmp}/dump.pgcustom`);
    }

    age = hasFlag('age') ? await startEncryptedSide(tmp) : undefined;
    await worker.resetPeak(); // the peak of the restores, not of the untimed backup before them
    for (let i = 0; i < RUNS && baselines; i++) {
      sh(`${bin('dropdb')} --if-exists ${scratch} && ${bin('createdb')} ${scratch}`);
      times.spec.push(
        sh(`gunzip -c ${tmp}/spec.sql.gz | PGDATABASE=${scratch} ${bin('psql')} -q -X -o /dev/null`),
      );
      sh(`${bin('dropdb')} --if-exists ${scratch} && ${bin('createdb')} ${scratch}`);
      times.pgRestore.push(sh(`${bin('pg_restore')} -j 2 -d ${scratch} ${tmp}/dump.pgcustom`));
      sh(`${bin('dropdb')} --if-exists ${scratch}`);
    }
    for (let i = 0; i < RUNS; i++) {
      const one = await timeDbopsRestore(client, config, backup.backupId, target, i);
      times.check.push(one.check);
      times.dbops.push(one.apply);
      cutovers.push(one.cutover);
      await age?.restore(target, i);
    }
    const rss = (await worker.peakRssKb()) / 1024;
    const spec = baselines ? median(times.spec) : NaN;
    const pgr = baselines ? median(times.pgRestore) : NaN;
    const dbops = median(times.dbops);
    const runs = (xs: number[]) => xs.map(secs).join(' ');
    console.log('\n| method | median s | runs s |');
    console.log('|---|---|---|');
    if (baselines) {
      console.log(`| spec's way: gunzip -c | psql (fresh db) | ${secs(spec)} | ${runs(times.spec)} |`);
      console.log(
        `| pg_restore -j 2 alone (custom archive pg_dump wrote to a file) | ${secs(pgr)} | ${runs(times.pgRestore)} |`,
      );
    }
    console.log(
      `| dbops restore, approval → result (download+sha256, offsets, pg_restore -j ${env.DBOPS_RESTORE_JOBS}, verify, cut-over) | ${secs(dbops)} | ${runs(times.dbops)} |`,
    );
    console.log(
      `| dbops pre-approval check (resolve, full archive check, plan) | ${secs(median(times.check))} | ${runs(times.check)} |`,
    );
    if (baselines) {
      console.log(`\nspeed-up vs the spec's way: ${(spec / dbops).toFixed(2)}× (goal ≥ 2×)`);
      console.log(`dbops vs pg_restore -j 2 alone: ${(dbops / pgr).toFixed(2)}× the time`);
    }
    console.log(`cut-over window: median ${median(cutovers)} ms (goal ≤ 2000 ms)`);
    console.log(
      `production worker (dist + prebundle) peak RSS during the restores: ${rss.toFixed(0)} MB (goal ≤ 200 MB)`,
    );
    if (age) {
      const m = median(age.apply);
      console.log(
        `encrypted (age) dbops restore, approval → result: ${secs(m)} s (${runs(age.apply)}): ${(m / dbops).toFixed(2)}× the unencrypted restore (runs alternated); pre-approval check ${secs(median(age.check))} s (${(median(age.check) / median(times.check)).toFixed(2)}×); worker peak RSS ${(await age.peakRssMb()).toFixed(0)} MB`,
      );
    }
  } finally {
    await age?.close();
    await connection.close();
    await worker.stop();
    sh(`${bin('dropdb')} --if-exists --force ${scratch}`);
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * One dbops restore of `backupId` into `target`, which exists first (a small live database), so the
 * cut-over really swaps: the pre-approval check and approval → result, timed apart.
 */
async function timeDbopsRestore(
  client: Client,
  config: Config,
  backupId: string,
  target: string,
  run: number,
): Promise<{ check: number; apply: number; cutover: number }> {
  sh(`${bin('dropdb')} --if-exists --force ${target} && ${bin('createdb')} ${target}`);
  const t0 = performance.now();
  const handle = await startRestore(client, config, {
    backup: backupId,
    target,
    allowUnlistedTarget: true,
    requestedBy: 'bench',
    key: 'none',
    now: new Date(Date.UTC(2030, 0, 1, 0, 0, run)),
  });
  let s: RestoreStatus;
  for (;;) {
    s = await handle.query(restoreStatusQuery);
    if (s.phase === 'awaiting-approval') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const check = performance.now() - t0;
  const t1 = performance.now();
  await handle.executeUpdate(restoreApprovalUpdate, {
    args: [{ decision: 'approve', by: 'bench-approver', planHash: s.planHash! }],
  });
  const r = await handle.result();
  const apply = performance.now() - t1;
  for (const d of q(`SELECT string_agg(datname, ' ') FROM pg_database WHERE datname LIKE '${target}%'`)
    .split(' ')
    .filter(Boolean)) {
    sh(`${bin('dropdb')} --if-exists --force ${d}`);
  }
  return { check, apply, cutover: r.cutoverMs ?? NaN };
}

/**
 * --age: the same database backed up encrypted by a worker of its own (own task queue and store).
 * Its restores alternate with the unencrypted ones, so both see the same machine.
 */
async function startEncryptedSide(tmp: string) {
  const env: Record<string, string> = {
    ...vars,
    DBOPS_TASK_QUEUE: `bench-restore-age-${suffix}`,
    DBOPS_STORAGE: 'local',
    DBOPS_BACKUP_DIR: path.join(tmp, 'store-age'),
    DBOPS_DATABASES: DB,
    DBOPS_RESTORE_JOBS: opt('jobs', '2'),
    ...ageKeyPair(tmp),
  };
  const config = testConfig(env);
  const worker = await startBenchWorker(env);
  const { client, connection } = await connectClient(config);
  const backup: BackupWorkflowResult = await client.workflow.execute('backupWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId: `bench-restore-age-backup-${suffix}`,
    args: [{ database: DB, trigger: 'manual', prune: false }],
  });
  console.log(`encrypted backup ${backup.backupId}: ${(backup.sizeBytes / 1e6).toFixed(0)} MB`);
  await worker.resetPeak();
  const apply: number[] = [];
  const check: number[] = [];
  return {
    apply,
    check,
    async restore(target: string, run: number) {
      const one = await timeDbopsRestore(client, config, backup.backupId, target, 100 + run);
      apply.push(one.apply);
      check.push(one.check);
    },
    peakRssMb: async () => (await worker.peakRssKb()) / 1024,
    async close() {
      await connection.close();
      await worker.stop();
    },
  };
}

void main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
