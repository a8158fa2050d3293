/**
 * Worker memory benchmark (not a test): the peak RSS of the *production* worker — the build in
 * dist/ (`npm run build`), which loads the prebundled dist/workflow-bundle.js instead of running
 * webpack at start-up — while it runs one real backup (and, with --restore, one real restore) of a
 * ~1.3 GB database through the workflows, against the dev stack.
 *
 *   npm run build && npx tsx bench/worker-rss.ts [--db bench_backup] [--storage local|s3|both]
 *       [--restore] [--build] [--source] [--env NAME=VALUE]… [--prepare]
 *   npm run bench:rss            (= --build --storage both --restore)
 *
 * What is measured, per worker process (one fresh worker per storage kind):
 *   - start-up peak: VmHWM of /proc/<pid>/status once the worker polls;
 *   - idle: VmRSS a few seconds after start-up (the baseline);
 *   - backup peak (and restore peak): the kernel's peak RSS counter is reset (/proc/<pid>/clear_refs
 *     = 5) before the operation, so VmHWM afterwards is the peak *during* that operation; RSS is also
 *     sampled every 50 ms as a cross-check (it can miss short spikes; VmHWM cannot).
 * pg_dump, pg_restore, zstd and psql run as child processes of the worker: their memory is theirs,
 * not the worker's RSS. It is reported separately (peak of the sum over the worker's descendants).
 *
 * The worker runs like the image runs it: `node dist/src/cli/main.js worker` (what bin/dbops.js
 * does), NODE_ENV=production, DBOPS_HTTP_PORT set (the /metrics exporter is on in production), and
 * NODE_OPTIONS and MALLOC_ARENA_MAX as deploy/k8s/base/worker-deployment.yaml sets them (--env
 * NAME=VALUE overrides one; --env NAME= unsets it). --source adds the same measurement for a
 * worker run from source with tsx (webpack at start-up), for comparison.
 * The restore runs in the same worker after the backup, so its peak starts from what the backup
 * left (as in production, where one worker runs both).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { RestoreStatus } from '../common/restore';
import { createBackupStore } from '../activities/storage';
import { startBackup } from '../src/client/backup';
import { startRestore } from '../src/client/restore';
import { REPO_ROOT } from '../src/config';
import { connectClient } from '../src/client/connection';
import { s3Overrides, stackVars, testConfig, uniqueSuffix } from '../test/helpers/stack';
import { restoreApprovalUpdate, restoreStatusQuery } from '../workflows/restore-messages';
import { freeLoopbackPort } from '../src/worker/runtime';
import { deployProcessEnv, resetPeak } from './lib';

// ---- options (copied from bench/lib.ts: this script stays self-contained) ----
const args = process.argv.slice(2);
const hasFlag = (name: string) => args.includes(`--${name}`);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};

const DB = opt('db', 'bench_backup');
const STORAGE = opt('storage', 'local');
const IDLE_SECONDS = Number(opt('idle-seconds', '5'));
const GOAL_MB = 200;
const suffix = uniqueSuffix();
const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;

function sh(cmd: string, argv: string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, argv, { env, encoding: 'utf8', cwd: REPO_ROOT, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** --env NAME=VALUE (repeatable; an empty value unsets NAME), applied over the Deployment's settings. */
function envOverrides(): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  args.forEach((a, i) => {
    if (a !== '--env' || args[i + 1] === undefined) return;
    const [name, ...rest] = args[i + 1]!.split('=');
    out[name!] = rest.join('=') || undefined;
  });
  return out;
}

// ---- /proc ----
interface ProcMem {
  rssKb: number;
  hwmKb: number;
  anonKb: number;
  fileKb: number;
}
function procMem(pid: number): ProcMem | undefined {
  let s: string;
  try {
    s = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const f = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0);
  return { rssKb: f('VmRSS'), hwmKb: f('VmHWM'), anonKb: f('RssAnon'), fileKb: f('RssFile') };
}
function descendants(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    let children = '';
    try {
      children = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const c of children.split(' ').filter(Boolean).map(Number)) out.push(c, ...descendants(c));
  }
  return out;
}

/** Samples the worker's RSS (and its descendants' summed RSS) every 50 ms between start() and stop(). */
function sampler(pid: number) {
  let timer: NodeJS.Timeout | undefined;
  let peak: ProcMem = { rssKb: 0, hwmKb: 0, anonKb: 0, fileKb: 0 };
  let childrenPeakKb = 0;
  let childrenSeen = new Set<string>();
  return {
    start() {
      peak = { rssKb: 0, hwmKb: 0, anonKb: 0, fileKb: 0 };
      childrenPeakKb = 0;
      childrenSeen = new Set();
      timer = setInterval(() => {
        const m = procMem(pid);
        if (m && m.rssKb > peak.rssKb) peak = m;
        let sum = 0;
        for (const c of descendants(pid)) {
          let comm: string;
          try {
            comm = readFileSync(`/proc/${c}/comm`, 'utf8').trim();
          } catch {
            continue; // gone
          }
          // A child between fork and exec is still a copy of the worker (shared pages): not counted.
          if (comm === 'node') continue;
          childrenSeen.add(comm);
          sum += procMem(c)?.rssKb ?? 0;
        }
        childrenPeakKb = Math.max(childrenPeakKb, sum);
      }, 50);
    },
    stop() {
      clearInterval(timer);
      return { peak, childrenPeakKb, children: [...childrenSeen].sort() };
    },
  };
}

// ---- the worker in a child process ----
interface RssWorker {
  child: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

async function startWorker(kind: 'build' | 'source', env: Record<string, string>): Promise<RssWorker> {
  const argv =
    kind === 'source' ? ['--import', 'tsx', 'src/cli/main.ts', 'worker'] : ['dist/src/cli/main.js', 'worker'];
  const child = spawn(process.execPath, argv, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const onData = (d: Buffer) => {
    log += d.toString();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (log.includes('polling task queue')) {
        clearInterval(timer);
        resolve();
      }
    }, 20);
    child.once('exit', (code) => {
      clearInterval(timer);
      reject(new Error(`worker exited ${code}:\n${log}`));
    });
  });
  return {
    child,
    log: () => log,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

// ---- one measurement ----
interface Measurement {
  label: string;
  startupHwmKb: number;
  idle: ProcMem;
  backupHwmKb: number;
  backupSampledKb: number;
  backupChildrenKb: number;
  backupChildren: string[];
  backupSeconds: number;
  backupMB: number;
  restore?: { hwmKb: number; sampledKb: number; childrenKb: number; children: string[]; seconds: number };
  bundled: boolean;
}

async function measure(kind: 'build' | 'source', storage: 'local' | 's3'): Promise<Measurement> {
  const vars = stackVars();
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'bench-rss-'));
  const storageEnv =
    storage === 's3'
      ? s3Overrides(`bench-rss-${suffix}`)
      : { DBOPS_STORAGE: 'local', DBOPS_BACKUP_DIR: path.join(tmp, 'store') };
  const overrides: Record<string, string> = {
    DBOPS_TASK_QUEUE: `bench-rss-${kind}-${storage}-${suffix}`,
    DBOPS_DATABASES: DB,
    ...storageEnv,
  };
  const processEnv: Record<string, string | undefined> = { ...deployProcessEnv(), ...envOverrides() };
  const env: Record<string, string> = {
    PATH: process.env.PATH!,
    HOME: process.env.HOME ?? '/tmp',
    ...vars,
    ...overrides,
    NODE_ENV: 'production',
    DBOPS_HTTP_PORT: String(await freeLoopbackPort()),
    ...(kind === 'source' ? { DBOPS_WORKFLOW_BUNDLE: 'off' } : {}),
  };
  for (const [k, v] of Object.entries(processEnv)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const config = testConfig(overrides);
  const label = `${kind === 'build' ? 'build (dist, dist/src/cli/main.js worker)' : 'source (tsx + webpack)'}, ${storage} store`;
  console.log(
    `\n== ${label}; NODE_OPTIONS=${env.NODE_OPTIONS ?? ''} MALLOC_ARENA_MAX=${env.MALLOC_ARENA_MAX ?? ''}`,
  );
  const worker = await startWorker(kind, env);
  const pid = worker.child.pid!;
  const { client, connection } = await connectClient(config);
  const store = createBackupStore(config.storage);
  const target = `${DB}_rss_${suffix}`;
  try {
    const startupHwmKb = procMem(pid)!.hwmKb;
    await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
    const idle = procMem(pid)!;
    console.log(
      `start-up peak ${mb(startupHwmKb)}; idle after ${IDLE_SECONDS} s ${mb(idle.rssKb)} (anon ${mb(idle.anonKb)}, file ${mb(idle.fileKb)})`,
    );

    if (!(await resetPeak(pid))) console.log('  (cannot reset VmHWM: backup peak includes start-up)');
    const s = sampler(pid);
    s.start();
    const t0 = performance.now();
    // A far-future minute of its own: workflow IDs are per database and minute.
    const now = new Date(Date.UTC(2041, 0, 1) + Math.floor(Math.random() * 1_000_000) * 60_000);
    const handle = await startBackup(client, config, { database: DB, now });
    const backup = await handle.result();
    const backupSeconds = (performance.now() - t0) / 1000;
    const b = s.stop();
    const backupHwmKb = procMem(pid)!.hwmKb;
    console.log(
      `backup ${backup.backupId}: ${(backup.sizeBytes / 1e6).toFixed(0)} MB in ${backupSeconds.toFixed(1)} s; worker peak ${mb(backupHwmKb)} (VmHWM), sampled ${mb(b.peak.rssKb)} (anon ${mb(b.peak.anonKb)}, file ${mb(b.peak.fileKb)}); child processes [${b.children.join(', ')}] peak ${mb(b.childrenPeakKb)} (not the worker's)`,
    );

    let restore: Measurement['restore'];
    if (hasFlag('restore')) {
      const psql = path.join(vars.DBOPS_PG_BIN_DIR!, 'psql');
      const pgEnv = { ...process.env, PGHOST: vars.PGHOST, PGPORT: vars.PGPORT, PGUSER: vars.PGUSER };
      sh(psql, ['-XqAt', '-d', 'postgres', '-c', `CREATE DATABASE "${target}"`], pgEnv);
      await resetPeak(pid);
      s.start();
      const t1 = performance.now();
      const h = await startRestore(client, config, {
        backup: backup.backupId,
        target,
        allowUnlistedTarget: true,
        requestedBy: 'bench-rss',
        key: 'none',
        now: new Date(Date.UTC(2041, 0, 1) + Math.floor(Math.random() * 1_000_000) * 1000),
      });
      let st: RestoreStatus;
      for (;;) {
        st = await h.query(restoreStatusQuery);
        if (st.phase === 'awaiting-approval') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await h.executeUpdate(restoreApprovalUpdate, {
        args: [{ decision: 'approve', by: 'bench-rss-approver', planHash: st.planHash! }],
      });
      await h.result();
      const seconds = (performance.now() - t1) / 1000;
      const r = s.stop();
      restore = {
        hwmKb: procMem(pid)!.hwmKb,
        sampledKb: r.peak.rssKb,
        childrenKb: r.childrenPeakKb,
        children: r.children,
        seconds,
      };
      console.log(
        `restore into ${target}: ${seconds.toFixed(1)} s (check + approval + restore); worker peak ${mb(restore.hwmKb)} (VmHWM), sampled ${mb(r.peak.rssKb)} (anon ${mb(r.peak.anonKb)}, file ${mb(r.peak.fileKb)}); child processes [${r.children.join(', ')}] peak ${mb(r.childrenPeakKb)} (not the worker's)`,
      );
    }
    const bundled = /webpack|Workflow bundle created/.test(worker.log());
    return {
      label,
      startupHwmKb,
      idle,
      backupHwmKb,
      backupSampledKb: b.peak.rssKb,
      backupChildrenKb: b.childrenPeakKb,
      backupChildren: b.children,
      backupSeconds,
      backupMB: backup.sizeBytes / 1e6,
      restore,
      bundled,
    };
  } catch (err) {
    console.error(`worker log:\n${worker.log().slice(-4000)}`);
    throw err;
  } finally {
    await connection.close();
    await worker.stop();
    for (const o of await store.list(`${DB}/`).catch(() => [])) await store.delete(o.key);
    await store.close();
    if (hasFlag('restore')) {
      const vars2 = stackVars();
      const psql = path.join(vars2.DBOPS_PG_BIN_DIR!, 'psql');
      const pgEnv = { ...process.env, PGHOST: vars2.PGHOST, PGPORT: vars2.PGPORT, PGUSER: vars2.PGUSER };
      const dbs = sh(
        psql,
        ['-XAt', '-d', 'postgres', '-c', `SELECT datname FROM pg_database WHERE datname LIKE '${target}%'`],
        pgEnv,
      )
        .split('\n')
        .filter(Boolean);
      for (const d of dbs)
        sh(psql, ['-XqAt', '-d', 'postgres', '-c', `DROP DATABASE IF EXISTS "${d}" WITH (FORCE)`], pgEnv);
    }
    await rm(tmp, { recursive: true, force: true });
  }
}

async function main() {
  // The dev stack (idempotent) and the build.
  sh('npm', ['run', '-s', 'stack', '--', 'up']);
  if (hasFlag('build')) {
    console.log('npm run build …');
    sh('npm', ['run', '-s', 'build']);
  }
  for (const f of ['dist/src/cli/main.js', 'dist/workflow-bundle.js']) {
    if (!existsSync(path.join(REPO_ROOT, f)))
      throw new Error(`${f} missing: run npm run build (or pass --build)`);
  }
  const vars = stackVars();
  const psql = path.join(vars.DBOPS_PG_BIN_DIR!, 'psql');
  const pgEnv = { ...process.env, PGHOST: vars.PGHOST, PGPORT: vars.PGPORT, PGUSER: vars.PGUSER };
  const exists = sh(
    psql,
    ['-XAt', '-d', 'postgres', '-c', `SELECT 1 FROM pg_database WHERE datname = '${DB}'`],
    pgEnv,
  ).trim();
  if (exists !== '1' || hasFlag('prepare')) {
    console.log(`creating ${DB} with bench/backup-seed.sql (a few minutes) …`);
    sh(psql, ['-Xq', '-d', 'postgres', '-c', `DROP DATABASE IF EXISTS "${DB}"`], pgEnv);
    sh(psql, ['-Xq', '-d', 'postgres', '-c', `CREATE DATABASE "${DB}"`], pgEnv);
    sh(psql, ['-Xq', '-v', 'ON_ERROR_STOP=1', '-d', DB, '-f', 'bench/backup-seed.sql'], pgEnv);
  }
  const size = Number(sh(psql, ['-XAt', '-d', 'postgres', '-c', `SELECT pg_database_size('${DB}')`], pgEnv));
  console.log(
    `worker RSS benchmark: database ${DB} (${(size / 1e9).toFixed(2)} GB), ${os.cpus().length} cores, node ${process.version}, ${new Date().toISOString()}`,
  );
  console.log(
    "RSS is the worker process's own; pg_dump / pg_restore / zstd / psql are separate child processes, reported apart.",
  );

  const storages: ('local' | 's3')[] = STORAGE === 'both' ? ['local', 's3'] : [STORAGE as 'local' | 's3'];
  const kinds: ('build' | 'source')[] = hasFlag('source') ? ['build', 'source'] : ['build'];
  const results: Measurement[] = [];
  for (const kind of kinds) for (const storage of storages) results.push(await measure(kind, storage));

  console.log(
    '\n| worker | start-up peak | idle | backup peak (VmHWM) | backup sampled max | restore peak (VmHWM) | children peak (not worker) | backup s |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    console.log(
      `| ${r.label}${r.bundled ? ' (ran webpack)' : ''} | ${mb(r.startupHwmKb)} | ${mb(r.idle.rssKb)} | ${mb(r.backupHwmKb)} | ${mb(r.backupSampledKb)} | ${r.restore ? mb(r.restore.hwmKb) : '—'} | ${mb(Math.max(r.backupChildrenKb, r.restore?.childrenKb ?? 0))} | ${r.backupSeconds.toFixed(1)} |`,
    );
  }
  const built = results.filter((r) => r.label.startsWith('build'));
  if (built.some((r) => r.bundled))
    console.log('WARNING: the built worker ran webpack: the prebundle was not used');
  const worst = Math.max(...built.flatMap((r) => [r.startupHwmKb, r.backupHwmKb, r.restore?.hwmKb ?? 0]));
  console.log(
    `\nproduction worker peak RSS (start-up, backup${hasFlag('restore') ? ', restore' : ''}): ${mb(worst)} — goal ≤ ${GOAL_MB} MB: ${worst / 1024 <= GOAL_MB ? 'met' : 'NOT met'}`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
