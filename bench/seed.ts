/**
 * Seed throughput: `npx tsx bench/seed.ts [--scale 1] [--runs 1] [--keep]`.
 * Baseline, measured in the same run: generating the same COPY data without a database (the
 * generator's own ceiling, one thread; the seed loads on two connections). Reports rows/s of the
 * full seed (wall time of seedDatabase: load, index builds, ANALYZE), of the load phase alone
 * (every COPY, with the HNSW build that overlaps it), and the database size.
 */
import { withPg } from '../activities/postgres/connection';
import { migratorOptions } from '../activities/postgres/migrate';
import { migrate } from '../activities/postgres/migrations/migrator';
import { Behaviors } from '../src/seed/behaviors';
import { itemStatsRows, userProfileRows } from '../src/seed/derived';
import {
  impressionRows,
  itemEmbeddingRows,
  itemRows,
  recommendationItemRows,
  recommendationListRows,
  userEmbeddingRows,
  userRows,
} from '../src/seed/rows';
import { seedDatabase } from '../src/seed';
import { planSeed, World } from '../src/seed/world';
import { loadConfig } from '../src/config';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
};
const scale = Number(arg('scale', '1'));
const runs = Number(arg('runs', '1'));
const keep = process.argv.includes('--keep');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function generateOnly(): number {
  const started = Date.now();
  const w = new World(planSeed({ scale, seed: 42, months: 12 }));
  let rows = 0;
  let bytes = 0;
  const behaviors = new Behaviors(w);
  const tables = [
    userRows(w),
    itemRows(w),
    ...behaviors.months,
    itemEmbeddingRows(w),
    userEmbeddingRows(w),
    recommendationListRows(w),
    recommendationItemRows(w),
    impressionRows(w),
    itemStatsRows(w, behaviors.totals),
    userProfileRows(w, behaviors.totals),
    behaviors.spill(),
  ];
  for (const t of tables) {
    for (const chunk of t.chunks()) {
      rows += chunk.rows;
      bytes += chunk.data.length;
    }
  }
  const s = (Date.now() - started) / 1000;
  console.log(
    `generate only: ${rows} rows, ${(bytes / 2 ** 20).toFixed(0)} MiB of COPY data in ${s.toFixed(1)} s`,
  );
  return rows / s;
}

async function main() {
  const config = loadConfig();
  const baseline = generateOnly();
  const rates: number[] = [];
  const copyRates: number[] = [];
  for (let run = 0; run < runs; run++) {
    const database = `t_bench_seed_${Date.now().toString(36)}`;
    await withPg(config.pg, 'postgres', (c) => c.query(`CREATE DATABASE ${database}`));
    try {
      const m = await migrate(migratorOptions({ pg: config.pg, migrations: config.migrations }, database));
      console.log(`migrate empty database: ${m.totalMs} ms`);
      const r = await seedDatabase(config.pg, database, { scale, seed: 42, months: 12 });
      const copyRows = r.totalRows; // item_stats and user_profiles are COPYs too now
      rates.push(r.rowsPerSecond);
      copyRates.push(copyRows / (r.copyMs / 1000));
      console.log(
        `run ${run + 1}: ${r.totalRows} rows in ${(r.totalMs / 1000).toFixed(1)} s = ${r.rowsPerSecond} rows/s ` +
          `(COPY phase ${(r.copyMs / 1000).toFixed(1)} s = ${Math.round(copyRows / (r.copyMs / 1000))} rows/s), ` +
          `database ${(r.databaseBytes / 2 ** 30).toFixed(2)} GiB`,
      );
      console.log(JSON.stringify(r.rows));
      console.log(`ms per table: ${JSON.stringify(r.tableMs)}`);
      const sum = (f: (key: string) => boolean) =>
        Object.entries(r.tableMs)
          .filter(([k]) => f(k))
          .reduce((t, [, ms]) => t + ms, 0);
      const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
      console.log(
        `phases (wall): load ${sec(r.copyMs)}, indexes + ANALYZE ${sec(r.totalMs - r.copyMs)}; ` +
          `summed over both connections: COPY ${sec(sum((k) => !k.startsWith('index ') && !k.startsWith('analyze')))}, ` +
          `HNSW ${sec(sum((k) => k === 'index idx_item_embeddings_hnsw'))}, ` +
          `behaviors' indexes ${sec(sum((k) => k.startsWith('index ') && (k.includes('behaviors') || k.includes('user_behaviors'))))}, ` +
          `other indexes ${sec(sum((k) => k.startsWith('index ') && !k.includes('behaviors') && k !== 'index idx_item_embeddings_hnsw'))}, ` +
          `ANALYZE ${sec(sum((k) => k.startsWith('analyze')))}`,
      );
    } finally {
      if (!keep)
        await withPg(config.pg, 'postgres', (c) =>
          c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`),
        );
      else console.log(`kept database ${database}`);
    }
  }
  console.log(
    `scale ${scale}: median seed ${Math.round(median(rates))} rows/s, COPY phase ${Math.round(median(copyRates))} rows/s; ` +
      `generator alone ${Math.round(baseline)} rows/s (seed/generator = ${(median(rates) / baseline).toFixed(2)})`,
  );
}

void main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
