/**
 * Test runs' own things are left out: another suite may be running beside this one (its namespace
 * dbops-test-*, its bucket prefix of the same name, databases and collections named t_*); each
 * run removes its own (test/global-setup.ts, the files' afterAll).
 */
const TEST_OWNED = /^(t_|dbops-test-)/;

/**
 * What a user of the dev stack owns and a test run must leave exactly as it found it: the `default`
 * namespace's workflows and schedules, the set of namespaces, databases and Milvus collections, the
 * dev database's row counts, `.stack/backups`, and the bucket's objects. `npx tsx
 * test/isolation/snapshot.ts > FILE` records it before the run (test/run.sh); unchanged.test.ts
 * compares it with the state after the run.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

import { Client, Connection } from '@temporalio/client';
import { Client as PgClient } from 'pg';

import { connectMilvus } from '../../activities/milvus/client';
import { loadConfig, type Config } from '../../src/config';
import { stackBucket, stackVars } from '../helpers/stack';

export interface Snapshot {
  defaultWorkflows: string[];
  defaultSchedules: string[];
  namespaces: string[];
  databases: string[];
  devDatabaseRows: Record<string, number> | null;
  milvusCollections: string[];
  stackBackups: string[];
  bucketObjects: string[];
}

function listFiles(dir: string, base = dir): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((name) => {
    const full = path.join(dir, name);
    const st = statSync(full);
    if (st.isDirectory()) return listFiles(full, base);
    return [`${path.relative(base, full)} ${st.size} ${st.mtimeMs}`];
  });
}

/**
 * Read only: lists what the user's namespace holds (dbops' configured namespace, `default` unless
 * DBOPS_TEMPORAL_NAMESPACE says otherwise, as for the quickstart); no test writes there.
 */
async function temporalState(address: string, userNamespace: string) {
  const connection = await Connection.connect({ address });
  try {
    const client = new Client({ connection, namespace: userNamespace });
    const defaultWorkflows: string[] = [];
    for await (const wf of client.workflow.list())
      defaultWorkflows.push(
        `${wf.workflowId} ${wf.runId} ${wf.status.name} ${wf.closeTime?.toISOString() ?? '-'}`,
      );
    const defaultSchedules: string[] = [];
    for await (const s of client.schedule.list())
      defaultSchedules.push(`${s.scheduleId} paused=${s.state.paused}`);
    const ns = await connection.workflowService.listNamespaces({ pageSize: 1000 });
    const namespaces = (ns.namespaces ?? [])
      .filter((n) => !TEST_OWNED.test(n.namespaceInfo?.name ?? ''))
      .map((n) => `${n.namespaceInfo?.name} state=${n.namespaceInfo?.state}`);
    return {
      defaultWorkflows: defaultWorkflows.sort(),
      defaultSchedules: defaultSchedules.sort(),
      namespaces: namespaces.sort(),
    };
  } finally {
    await connection.close();
  }
}

async function postgresState(vars: Record<string, string>) {
  const conn = { host: vars.PGHOST, port: Number(vars.PGPORT), user: vars.PGUSER };
  const admin = new PgClient({ ...conn, database: 'postgres' });
  await admin.connect();
  let databases: string[];
  try {
    databases = (await admin.query<{ datname: string }>('SELECT datname FROM pg_database ORDER BY 1')).rows
      .map((r) => r.datname)
      .filter((d) => !TEST_OWNED.test(d));
  } finally {
    await admin.end();
  }
  const devDb = vars.PGDATABASE!;
  if (!databases.includes(devDb)) return { databases, devDatabaseRows: null };
  const dev = new PgClient({ ...conn, database: devDb });
  await dev.connect();
  try {
    const tables = await dev.query<{ t: string }>(
      `SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
        ORDER BY 1`,
    );
    const devDatabaseRows: Record<string, number> = {};
    for (const { t } of tables.rows) {
      const r = await dev.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`);
      devDatabaseRows[t] = Number(r.rows[0]?.n ?? 0);
    }
    return { databases, devDatabaseRows };
  } finally {
    await dev.end();
  }
}

async function milvusState(config: Config): Promise<string[]> {
  const client = await connectMilvus(config.milvus);
  try {
    const res = await client.showCollections();
    return res.data
      .map((c) => c.name)
      .filter((c) => !TEST_OWNED.test(c))
      .sort();
  } finally {
    client.closeConnection();
  }
}

async function bucketState(): Promise<string[]> {
  const store = stackBucket('');
  try {
    return (await store.list(''))
      .filter((o) => !TEST_OWNED.test(o.key))
      .map((o) => `${o.key} ${o.size} ${o.lastModified.toISOString()}`);
  } finally {
    await store.close();
  }
}

export async function takeSnapshot(): Promise<Snapshot> {
  const vars = stackVars();
  // dbops' own config on the dev stack, as the quickstart and the user's commands load it.
  const user = loadConfig({ DBOPS_STACK_HOME: vars.DBOPS_STACK_HOME });
  const [temporal, pg, milvusCollections, bucketObjects] = await Promise.all([
    temporalState(user.temporal.address, user.temporal.namespace),
    postgresState(vars),
    milvusState(user),
    bucketState(),
  ]);
  return {
    ...temporal,
    ...pg,
    milvusCollections,
    stackBackups: user.storage.kind === 'local' ? listFiles(user.storage.dir).sort() : [],
    bucketObjects,
  };
}

if (require.main === module) {
  takeSnapshot().then(
    (s) => process.stdout.write(`${JSON.stringify(s, null, 2)}\n`),
    (err: unknown) => {
      process.stderr.write(
        `cannot snapshot the dev stack: ${err instanceof Error ? err.message : String(err)}\n`,
      );
      process.exitCode = 1;
    },
  );
}
