/**
 * Seed throughput: `npx tsx bench/seed.ts [--scale 1] [--runs 1] [--keep]`.
 * Baseline, measured in the same run: generating the same COPY text without a database (the
 * generator's own ceiling, one thread; the seed loads on two connections). Reports rows/s of the full seed (COPY + derived tables + commit),
 * the COPY phase alone, and the database size.
 */
import { withPg } from '../activities/postgres/connection';
import { migratorOptions } from '../activities/postgres/migrate';
import { migrate } from '../activities/postgres/migrations/migrator';
import {
  behaviorRows,
  impressionRows,
  itemEmbeddingRows,
  itemRows,
  recommendationItemRows,
  recommendationListRows,
  userEmbeddingRows,
  userRows,
} from '../activities/postgres/seed/rows';
import { seedDatabase } from '../activities/postgres/seed/seed';
import { planSeed, World } from '../activities/postgres/seed/world';
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
  const tables = [
    userRows(w),
    itemRows(w),
    behaviorRows(w),
    itemEmbeddingRows(w),
    userEmbeddingRows(w),
    recommendationListRows(w),
    recommendationItemRows(w),
    impressionRows(w),
  ];
  for (const t of tables) {
    for (const line of t.lines()) {
      rows++;
      bytes += line.length;
    }
  }
  const s = (Date.now() - started) / 1000;
  console.log(`generate only: ${rows} rows, ${(bytes / 2 ** 20).toFixed(0)} MiB text in ${s.toFixed(1)} s`);
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
      const copyRows = r.totalRows - r.plan.users - r.plan.items;
      rates.push(r.rowsPerSecond);
      copyRates.push(copyRows / (r.copyMs / 1000));
      console.log(
        `run ${run + 1}: ${r.totalRows} rows in ${(r.totalMs / 1000).toFixed(1)} s = ${r.rowsPerSecond} rows/s ` +
          `(COPY phase ${(r.copyMs / 1000).toFixed(1)} s = ${Math.round(copyRows / (r.copyMs / 1000))} rows/s), ` +
          `database ${(r.databaseBytes / 2 ** 30).toFixed(2)} GiB`,
      );
      console.log(JSON.stringify(r.rows));
      console.log(`ms per table: ${JSON.stringify(r.tableMs)}`);
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
