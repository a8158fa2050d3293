/**
 * Backup benchmark (not a test): on one database, in one run, times
 *   - the bound: `pg_dump -Fc -Z0 > /dev/null`
 *   - the spec's way: `pg_dump -Fp --no-owner --no-privileges | gzip -6 > file`, then `gzip -t file`
 *   - dbops backup end to end (workflow start → result: dump, compress, hash, store, re-read check,
 *     manifest, latest) to the local store and to the S3 server, for custom/plain/directory + zstd
 * and prints medians, sizes, the worker's peak RSS and the ratios against the goals.
 *
 *   npx tsx bench/backup.ts [--db bench_backup] [--runs 3] [--prepare] [--quick]
 * --quick times only the bound and the default (local custom+zstd), for iterating on the pipeline;
 * with --age also the same backup encrypted with age (DBOPS_BACKUP_AGE_RECIPIENTS), which the full
 * run always times (goal: ≤ 1.10× the unencrypted backup).
 * --prepare (re)creates the database: `dbops db seed --scale 1` when available, else bench/backup-seed.sql.
 * Run it in the background: `nohup npx tsx bench/backup.ts > bench/out/backup.txt 2>&1 &`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createBackupStore } from '../activities/storage';
import type { BackupCompression, BackupFormat } from '../common/backup';
import { startBackup } from '../src/client/backup';
import { connectClient } from '../src/client/connection';
import { s3Overrides, testConfig, uniqueSuffix } from '../test/helpers/stack';
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

const DB = opt('db', 'bench_backup');
const RUNS = Number(opt('runs', '3'));
const QUICK = hasFlag('quick');
const suffix = uniqueSuffix();
const bin = pgBin;
const pgEnv = pgEnvFor(DB);
const mb = (b: number) => (b / 1e6).toFixed(0);
const sh = timedShell(pgEnv);

function prepare(): void {
  const seed = spawnSync('npm', ['run', '-s', 'dbops', '--', 'db', 'seed', '--help'], { encoding: 'utf8' });
  if (seed.status === 0 && /seed/.test(seed.stdout)) {
    sh(`npm run -s dbops -- db seed --scale 1 --database ${DB}`);
  } else {
    console.log(
      'dbops db seed not available: generating the seed-shaped database with bench/backup-seed.sql',
    );
    sh(
      `${bin('dropdb')} --if-exists ${DB} && ${bin('createdb')} ${DB} && ${bin('psql')} -q -v ON_ERROR_STOP=1 -f bench/backup-seed.sql`,
    );
  }
}

async function benchDbops(
  label: string,
  extraEnv: Record<string, string>,
  variants: [BackupFormat, BackupCompression][],
) {
  const queue = `bench-backup-${label}-${suffix}`;
  const baseEnv: Record<string, string> = {
    ...vars,
    DBOPS_TASK_QUEUE: queue,
    DBOPS_DATABASES: DB,
    ...extraEnv,
  };
  const config = testConfig(baseEnv);
  const worker = await startBenchWorker(baseEnv);
  const { client, connection } = await connectClient(config);
  await worker.resetPeak(); // the peak of the backups, not of start-up
  const store = createBackupStore(config.storage);
  const out: { variant: string; times: number[]; size: number }[] = [];
  try {
    // Each bench run gets its own block of (fake, far-future) minutes: workflow IDs are per database and
    // minute, and a reused ID would join an earlier run's workflow instead of timing a new backup.
    const firstMinute = Date.UTC(2040, 0, 1) + Math.floor(Math.random() * 1_000_000) * 60_000;
    let minute = 0;
    for (const [format, compression] of variants) {
      const times: number[] = [];
      let size = 0;
      for (let i = 0; i < RUNS; i++) {
        const t = performance.now();
        const handle = await startBackup(client, config, {
          database: DB,
          format,
          compression,
          now: new Date(firstMinute + 60_000 * minute++),
        });
        const r = await handle.result();
        times.push(performance.now() - t);
        size = r.sizeBytes;
      }
      out.push({ variant: `dbops ${label} ${format}+${compression}`, times, size });
    }
    return { results: out, peakRssKb: await worker.peakRssKb() };
  } finally {
    for (const o of await store.list(`${DB}/`)) await store.delete(o.key);
    await store.close();
    await connection.close();
    await worker.stop();
  }
}

const main = () => inBenchRun(mainInRun);

async function mainInRun() {
  if (hasFlag('prepare')) prepare();
  const work = await mkdtemp(path.join(os.tmpdir(), 'bench-backup-'));
  const dbSize = spawnSync(bin('psql'), ['-Atc', `SELECT pg_database_size('${DB}')`], {
    env: pgEnv,
    encoding: 'utf8',
  }).stdout.trim();
  console.log(
    `backup benchmark: database ${DB} (${mb(Number(dbSize))} MB on disk), ${RUNS} runs each, ${os.cpus().length} cores, ${new Date().toISOString()}`,
  );
  try {
    const bound: number[] = [];
    const specDump: number[] = [];
    const specVerify: number[] = [];
    let specSize = 0;
    for (let i = 0; i < RUNS; i++) {
      bound.push(sh(`${bin('pg_dump')} -Fc -Z0 > /dev/null`));
      if (QUICK) continue;
      const file = path.join(work, 'spec.sql.gz');
      specDump.push(sh(`${bin('pg_dump')} --format=plain --no-owner --no-privileges | gzip -6 > ${file}`));
      specVerify.push(sh(`gzip -t ${file}`));
      specSize = (await stat(file)).size;
      await rm(file);
    }
    const local = await benchDbops(
      'local',
      { DBOPS_STORAGE: 'local', DBOPS_BACKUP_DIR: path.join(work, 'store') },
      QUICK
        ? [['custom', 'zstd']]
        : [
            ['custom', 'zstd'],
            ['plain', 'zstd'],
            ['directory', 'zstd'],
          ],
    );
    const age = QUICK && !hasFlag('age') ? undefined : await benchEncrypted(work);
    if (QUICK) {
      const m = median(local.results[0]!.times);
      console.log(
        `bound ${secs(median(bound))} s (${bound.map(secs).join(' ')}); dbops local custom+zstd ${secs(m)} s (${local.results[0]!.times.map(secs).join(' ')}) = ${(m / median(bound)).toFixed(2)}× bound, ${mb(local.results[0]!.size)} MB; worker peak RSS ${(local.peakRssKb / 1024).toFixed(0)} MB`,
      );
      if (age) printEncrypted(age, m);
      return;
    }
    const s3 = await benchDbops('s3', s3Overrides(`bench-${suffix}`), [['custom', 'zstd']]);

    const b = median(bound);
    const spec = median(specDump) + median(specVerify);
    console.log('\n| method | median s | runs s | output MB | × bound | spec ÷ this |');
    console.log('|---|---|---|---|---|---|');
    console.log(
      `| bound: pg_dump -Fc -Z0 > /dev/null | ${secs(b)} | ${bound.map(secs).join(' ')} | — | 1.00 | |`,
    );
    console.log(
      `| spec: pg_dump -Fp \\| gzip -6 | ${secs(median(specDump))} | ${specDump.map(secs).join(' ')} | ${mb(specSize)} | ${(median(specDump) / b).toFixed(2)} | |`,
    );
    console.log(
      `| spec: gzip -t | ${secs(median(specVerify))} | ${specVerify.map(secs).join(' ')} | — | | |`,
    );
    console.log(
      `| spec: backup + verify | ${secs(spec)} | | ${mb(specSize)} | ${(spec / b).toFixed(2)} | 1.00 |`,
    );
    for (const r of [...local.results, ...s3.results]) {
      const m = median(r.times);
      console.log(
        `| ${r.variant} (end to end) | ${secs(m)} | ${r.times.map(secs).join(' ')} | ${mb(r.size)} | ${(m / b).toFixed(2)} | ${(spec / m).toFixed(2)} |`,
      );
    }
    console.log(
      `\nproduction worker (dist + prebundle, the Deployment's NODE_OPTIONS) peak RSS (VmHWM): local ${(local.peakRssKb / 1024).toFixed(0)} MB, s3 ${(s3.peakRssKb / 1024).toFixed(0)} MB`,
    );
    const def = median(local.results[0]!.times);
    printEncrypted(age!, def);
    const defS3 = median(s3.results[0]!.times);
    console.log('\ngoals (default custom+zstd):');
    console.log(`  end to end ≤ 1.25× bound: local ${(def / b).toFixed(2)}×, s3 ${(defS3 / b).toFixed(2)}×`);
    console.log(
      `  ≥ 4.5× faster than spec backup+verify: local ${(spec / def).toFixed(2)}×, s3 ${(spec / defS3).toFixed(2)}×`,
    );
    console.log(
      `  output ≤ spec's: ${mb(local.results[0]!.size)} MB vs ${mb(specSize)} MB (${(local.results[0]!.size / specSize).toFixed(2)}×)`,
    );
    console.log(
      `  worker peak RSS ≤ 200 MB: ${(Math.max(local.peakRssKb, s3.peakRssKb) / 1024).toFixed(0)} MB`,
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);

/** The default backup (local custom+zstd) encrypted with age for a key pair made here. */
async function benchEncrypted(work: string) {
  return benchDbops(
    'local-age',
    { DBOPS_STORAGE: 'local', DBOPS_BACKUP_DIR: path.join(work, 'store-age'), ...ageKeyPair(work) },
    [['custom', 'zstd']],
  );
}

function printEncrypted(age: Awaited<ReturnType<typeof benchEncrypted>>, plainMedian: number): void {
  const r = age.results[0]!;
  const m = median(r.times);
  console.log(
    `encrypted (age) local custom+zstd ${secs(m)} s (${r.times.map(secs).join(' ')}), ${mb(r.size)} MB: ${(m / plainMedian).toFixed(2)}× the unencrypted backup (goal ≤ 1.10×); worker peak RSS ${(age.peakRssKb / 1024).toFixed(0)} MB`,
  );
}
