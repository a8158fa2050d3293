/**
 * Recovery-point benchmark (issue 20; a script, not a test): how far the archived WAL trails the
 * server under a steady write load. On a private PostgreSQL 18 (the dev server's WAL carries every
 * other test's writes), the production worker (dist, the Deployment's NODE_OPTIONS) archives with
 * its defaults (500 ms poll, partial upload at most once a second) while one small commit is made
 * every 20 ms for 60 s. Every 250 ms the archived position (the end of the newest completed
 * segment, or of the newest `<segment>.partial.zst` upload when further) is compared with
 * pg_current_wal_lsn(): the lag in bytes, and in seconds since the server first wrote beyond it.
 * Prints median and worst lag (goal ≤ 5 s, against 24 h for daily dumps), the same for completed
 * segments only (what the archive held before partial uploads), and the worker's peak RSS while
 * archiving (goal ≤ 200 MB).
 *
 *   npx tsx bench/wal-lag.ts [--seconds 60] [--every-ms 20] [--sample-ms 250] [--storage local|s3]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client as PgClient } from 'pg';
import { pgClientConfig } from '../activities/postgres/connection';
import { createBackupStore, type BackupStore } from '../activities/storage';
import {
  formatLsn,
  parseLsn,
  parseWalArchiveKey,
  segmentEndLsn,
  walPartialSidecarKey,
  walTimelinePrefix,
  type WalPartialSidecar,
} from '../common/pitr';
import { connectClient } from '../src/client/connection';
import { startWalArchiver, stopWalArchiver } from '../src/client/wal';
import { s3Overrides, testConfig, uniqueSuffix } from '../test/helpers/stack';
import { closeAllPrivateServers, startPrivatePostgres } from '../test/drills/kit/private-servers';
import { inBenchRun, median, opt, startBenchWorker, vars } from './lib';

const SECONDS = Number(opt('seconds', '60'));
const EVERY_MS = Number(opt('every-ms', '20'));
const SAMPLE_MS = Number(opt('sample-ms', '250'));
const STORAGE = opt('storage', 'local');
const suffix = uniqueSuffix();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The archived position from one listing: completed segments' end, and the newest partial upload's end. */
async function archivedPosition(
  store: BackupStore,
  systemId: string,
): Promise<{ completed: number; withPartial: number }> {
  const prefix = walTimelinePrefix(systemId, '00000001');
  let completed = 0;
  let partial: string | undefined;
  for (const o of await store.list(prefix)) {
    const k = parseWalArchiveKey(o.key.slice(prefix.length));
    if (!k?.sidecar) continue;
    if (k.partial) partial = k.segment;
    else completed = Math.max(completed, segmentEndLsn(k.segment));
  }
  const sidecar = partial
    ? await store.getJson<WalPartialSidecar>(walPartialSidecarKey(systemId, partial))
    : undefined;
  const p = sidecar ? parseLsn(sidecar.receivedLsn) : 0;
  return { completed, withPartial: Math.max(completed, p) };
}

interface Sample {
  t: number;
  current: number;
  completed: number;
  withPartial: number;
}

/** Seconds since the server first wrote beyond `position` (0 when it has not), from the samples so far. */
function lagSeconds(samples: readonly Sample[], position: number, now: number): number {
  const first = samples.find((s) => s.current > position);
  return first ? Math.max(0, (now - first.t) / 1000) : 0;
}

async function main() {
  await inBenchRun(async () => {
    const pg = await startPrivatePostgres();
    const work = await mkdtemp(path.join(os.tmpdir(), `bench-wal-lag-${suffix}-`));
    const env: Record<string, string> = {
      ...vars,
      ...pg.env,
      DBOPS_TASK_QUEUE: `bench-wal-lag-${suffix}`,
      DBOPS_BACKUP_DIR: path.join(work, 'store'),
      DBOPS_WAL_SLOT: `bench_wal_${suffix}`,
      DBOPS_WAL_SPOOL_DIR: path.join(work, 'spool'),
      ...(STORAGE === 's3' ? s3Overrides(`bench-wal-lag-${suffix}`) : { DBOPS_STORAGE: 'local' }),
    };
    const config = testConfig(env);
    const worker = await startBenchWorker(env);
    const { client, connection } = await connectClient(config);
    const store = createBackupStore(config.storage);
    const pgc = new PgClient(pgClientConfig(config.pg, 'postgres'));
    await pgc.connect();
    let systemId: string | undefined;
    try {
      await pgc.query(
        'CREATE TABLE bench_rows (id bigserial PRIMARY KEY, at timestamptz DEFAULT now(), note text)',
      );
      ({ systemId } = await startWalArchiver(client, config));
      const sys = systemId;
      // Steady state first: pg_receivewal starts at the slot's segment start and catches up on
      // initdb's WAL; the load starts once the store holds everything written so far.
      const [ready] = (await pgc.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows;
      for (let i = 0; (await archivedPosition(store, sys)).withPartial < parseLsn(ready!.lsn); i++) {
        if (i > 120) throw new Error(`the archiver did not reach ${ready!.lsn} in 60 s`);
        await sleep(500);
      }
      await worker.resetPeak(); // the peak while archiving, not of start-up
      const writer = new PgClient(pgClientConfig(config.pg, 'postgres'));
      await writer.connect();
      const end = Date.now() + SECONDS * 1000;
      let commits = 0;
      const writing = (async () => {
        for (let next = Date.now(); Date.now() < end; next += EVERY_MS) {
          await writer.query("INSERT INTO bench_rows (note) VALUES ('a small commit of a steady load')");
          commits++;
          await sleep(Math.max(0, next + EVERY_MS - Date.now()));
        }
      })();
      const samples: Sample[] = [];
      const lag = {
        bytes: [] as number[],
        seconds: [] as number[],
        cBytes: [] as number[],
        cSeconds: [] as number[],
      };
      while (Date.now() < end) {
        const [r] = (await pgc.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows;
        const t = Date.now();
        const pos = await archivedPosition(store, sys);
        const s = { t, current: parseLsn(r!.lsn), ...pos };
        samples.push(s);
        lag.bytes.push(Math.max(0, s.current - s.withPartial));
        lag.seconds.push(lagSeconds(samples, s.withPartial, t));
        lag.cBytes.push(Math.max(0, s.current - s.completed));
        lag.cSeconds.push(lagSeconds(samples, s.completed, t));
        await sleep(Math.max(0, t + SAMPLE_MS - Date.now()));
      }
      await writing;
      await writer.end();
      const peak = await worker.peakRssKb();
      const last = samples.at(-1)!;
      const max = (xs: number[]) => Math.max(...xs);
      console.log(
        `WAL lag under one commit every ${EVERY_MS} ms for ${SECONDS} s (${commits} commits, ${((last.current - samples[0]!.current) / 1024).toFixed(0)} KiB of WAL), ${samples.length} samples every ${SAMPLE_MS} ms, ${STORAGE} store:`,
      );
      console.log(
        `  archived incl. partial uploads: median ${median(lag.seconds).toFixed(2)} s / ${median(lag.bytes)} bytes, worst ${max(lag.seconds).toFixed(2)} s / ${max(lag.bytes)} bytes (goal ≤ 5 s; daily dumps: 24 h)`,
      );
      console.log(
        `  completed segments only:        median ${median(lag.cSeconds).toFixed(2)} s / ${median(lag.cBytes)} bytes, worst ${max(lag.cSeconds).toFixed(2)} s / ${max(lag.cBytes)} bytes`,
      );
      console.log(`  server at ${formatLsn(last.current)}, archived to ${formatLsn(last.withPartial)}`);
      console.log(`  worker peak RSS while archiving: ${(peak / 1024).toFixed(0)} MB (goal ≤ 200 MB)`);
    } finally {
      if (systemId) await stopWalArchiver(client, systemId).catch(() => undefined);
      await pgc.end().catch(() => undefined);
      await store.close();
      await connection.close();
      await worker.stop();
      await closeAllPrivateServers();
      await rm(work, { recursive: true, force: true });
    }
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
