/**
 * Point-in-time recovery benchmark (not a test), on the scale-1 seed database, in one run:
 *   - base backup: dbops' full base backup (pg_basebackup | zstd → store, read back, pg_verifybackup)
 *     against the bound `pg_basebackup -D - -Ft -X fetch > /dev/null` of the same cluster (goal ≤ 1.3×);
 *   - restore: dbops point-in-time restore to the latest archived WAL (assemble, recover, copy into the
 *     shadow, verify, cut-over) against a dbops logical restore of the same database (goal ≤ 1.5×),
 *     each from start to result with an approval as soon as the plan is shown;
 *   - the production worker's peak RSS (goal ≤ 200 MB).
 * The WAL archiver runs throughout on a slot of its own, dropped at the end with everything else.
 *
 *   npx tsx bench/pitr.ts [--db bench_pitr] [--runs 1] [--keep-db]
 * Base backups cover the whole cluster: other large databases on the dev server make them bigger.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { Client } from '@temporalio/client';
import type { BackupWorkflowResult } from '../common/backup';
import { BASE_BACKUP_FILES, type BaseBackupManifest } from '../common/basebackup';
import { baseBackupObjectKey, type RecoveryTarget } from '../common/pitr';
import { createBackupStore } from '../activities/storage';
import { startBaseBackup } from '../src/client/basebackup';
import { connectClient } from '../src/client/connection';
import { startPointInTimeRestore } from '../src/client/pitr-restore';
import { decideRestore, pollRestoreStatus, startRestore, type RestoreHandle } from '../src/client/restore';
import { startWalArchiver, stopWalArchiver } from '../src/client/wal';
import type { Config } from '../src/config';
import { testConfig, uniqueSuffix } from '../test/helpers/stack';
import {
  ensureSeedDatabase,
  hasFlag,
  inBenchRun,
  median,
  opt,
  pgBin,
  pgEnvFor,
  secs,
  startBenchWorker,
  timedShell,
  vars,
} from './lib';

const DB = opt('db', 'bench_pitr');
const RUNS = Number(opt('runs', '1'));
const suffix = uniqueSuffix();
const slot = `bench_pitr_${suffix}`;
const sh = timedShell(pgEnvFor('postgres'));
const q = (sql: string) =>
  spawnSync(pgBin('psql'), ['-XAtc', sql], { env: pgEnvFor('postgres'), encoding: 'utf8' }).stdout.trim();

/** Start → approval as soon as the plan is shown → result; the whole time. */
async function timed(client: Client, config: Config, start: () => Promise<RestoreHandle>): Promise<number> {
  const t0 = performance.now();
  const handle = await start();
  const s = await pollRestoreStatus(handle, (x) => x.phase === 'awaiting-approval');
  if (s?.phase !== 'awaiting-approval') await handle.result();
  await decideRestore(client, handle.workflowId, {
    decision: 'approve',
    by: 'bench-approver',
    planHash: s!.planHash!,
    key: 'none',
  });
  const r = await handle.result();
  if (r.outcome !== 'restored') throw new Error(`restore ended ${r.outcome}`);
  const phases = r.plan.pointInTime?.recoveryMs;
  if (phases)
    console.log(
      `point-in-time restore phases: unpack ${secs(phases.assemble)} s, recover ${secs(phases.recover)} s, copy into the shadow ${secs(phases.copy)} s`,
    );
  return performance.now() - t0;
}

function dropTargets(target: string): void {
  for (const d of q(`SELECT string_agg(datname, ' ') FROM pg_database WHERE datname LIKE '${target}%'`)
    .split(' ')
    .filter(Boolean))
    sh(`${pgBin('dropdb')} --if-exists --force ${d}`);
}

const main = () => inBenchRun(mainInRun);

async function mainInRun() {
  ensureSeedDatabase(DB, sh);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'bench-pitr-'));
  await chmod(tmp, 0o755); // the recovery's temporary server runs as postgres when we are root
  const env: Record<string, string> = {
    ...vars,
    DBOPS_TASK_QUEUE: `bench-pitr-${suffix}`,
    DBOPS_STORAGE: 'local',
    DBOPS_BACKUP_DIR: path.join(tmp, 'store'),
    DBOPS_DATABASES: DB,
    DBOPS_WAL_SLOT: slot,
    DBOPS_WAL_SPOOL_DIR: path.join(tmp, 'spool'),
    DBOPS_SCRATCH_DIR: tmp,
    DBOPS_RESTORE_JOBS: opt('jobs', '2'),
  };
  const config = testConfig(env);
  const worker = await startBenchWorker(env);
  const { client, connection } = await connectClient(config);
  const target = `${DB}_target`;
  const t = {
    bound: [] as number[],
    base: [] as number[],
    take: [] as number[],
    logical: [] as number[],
    pitr: [] as number[],
  };
  let systemId: string | undefined;
  try {
    console.log(
      `database ${DB}: ${(Number(q(`SELECT pg_database_size('${DB}')`)) / 1e9).toFixed(2)} GB; cluster ${(Number(q('SELECT sum(pg_database_size(oid)) FROM pg_database')) / 1e9).toFixed(2)} GB; runs ${RUNS}; cores ${os.cpus().length}`,
    );
    systemId = (await startWalArchiver(client, config)).systemId;
    await worker.resetPeak();
    for (let i = 0; i < RUNS; i++) {
      t.bound.push(sh(`${pgBin('pg_basebackup')} -D - -Ft -X fetch -c fast > /dev/null`));
      const b0 = performance.now();
      const taken = await (
        await startBaseBackup(client, config, { kind: 'full', now: new Date(Date.UTC(2032, 0, 1, 0, i)) })
      ).result();
      t.base.push(performance.now() - b0);
      // pg_basebackup | zstd into the store, apart from the proof (read back, pg_verifybackup).
      const store = createBackupStore(config.storage);
      const m = await store.getJson<BaseBackupManifest>(
        baseBackupObjectKey(taken.systemIdentifier, taken.id, BASE_BACKUP_FILES.manifest),
      );
      await store.close();
      t.take.push(Date.parse(m!.stoppedAt) - Date.parse(m!.startedAt));
    }
    const backup: BackupWorkflowResult = await client.workflow.execute('backupWorkflow', {
      taskQueue: config.temporal.taskQueue,
      workflowId: `bench-pitr-backup-${suffix}`,
      args: [{ database: DB, trigger: 'manual', prune: false }],
    });
    q('SELECT pg_switch_wal()');
    await new Promise((r) => setTimeout(r, 3_000)); // the archiver stores the closed segment
    const latest: RecoveryTarget = { kind: 'latest' };
    for (let i = 0; i < RUNS; i++) {
      dropTargets(target);
      sh(`${pgBin('createdb')} ${target}`);
      const common = { target, requestedBy: 'bench', key: 'none', allowUnlistedTarget: true };
      t.logical.push(
        await timed(client, config, () =>
          startRestore(client, config, {
            ...common,
            backup: backup.backupId,
            now: new Date(Date.UTC(2032, 1, 1, 0, i)),
          }),
        ),
      );
      dropTargets(target);
      sh(`${pgBin('createdb')} ${target}`);
      t.pitr.push(
        await timed(client, config, () =>
          startPointInTimeRestore(client, config, {
            ...common,
            database: DB,
            recovery: latest,
            now: new Date(Date.UTC(2032, 2, 1, 0, i)),
          }),
        ),
      );
    }
    const rss = (await worker.peakRssKb()) / 1024;
    const runs = (xs: number[]) => xs.map(secs).join(' ');
    console.log('\n| what | median s | runs s |');
    console.log('|---|---|---|');
    console.log(
      `| bound: pg_basebackup -D - -Ft -X fetch > /dev/null | ${secs(median(t.bound))} | ${runs(t.bound)} |`,
    );
    console.log(
      `| dbops full base backup (zstd, store, read back, pg_verifybackup) | ${secs(median(t.base))} | ${runs(t.base)} |`,
    );
    console.log(`| of which pg_basebackup → zstd → store | ${secs(median(t.take))} | ${runs(t.take)} |`);
    console.log(
      `| dbops logical restore, start → restored | ${secs(median(t.logical))} | ${runs(t.logical)} |`,
    );
    console.log(
      `| dbops point-in-time restore to latest, start → restored | ${secs(median(t.pitr))} | ${runs(t.pitr)} |`,
    );
    console.log(
      `\nbase backup: ${(median(t.base) / median(t.bound)).toFixed(2)}× the bound with its proof, ${(median(t.take) / median(t.bound)).toFixed(2)}× without (goal ≤ 1.3×)`,
    );
    console.log(
      `point-in-time restore: ${(median(t.pitr) / median(t.logical)).toFixed(2)}× the logical restore (goal ≤ 1.5×)`,
    );
    console.log(
      `production worker peak RSS while archiving, backing up and restoring: ${rss.toFixed(0)} MB (goal ≤ 200 MB)`,
    );
  } finally {
    if (systemId) await stopWalArchiver(client, systemId).catch((e: unknown) => console.error(e));
    await connection.close();
    await worker.stop();
    for (const s of [slot, `${slot}_recv`])
      q(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '${s}'`);
    dropTargets(target);
    if (!hasFlag('keep-db')) sh(`${pgBin('dropdb')} --if-exists --force ${DB}`);
    await rm(tmp, { recursive: true, force: true });
  }
}

void main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
