/**
 * Private servers for drills that stop, kill or restart a server: a PostgreSQL 18 and a Temporal
 * dev server of the drill's own, on free loopback ports, in temporary folders. The shared dev stack
 * (PostgreSQL 55432, Temporal 17233) serves every other test file running at the same time and must
 * never be stopped by a drill. Both use the dev stack's binaries (same PostgreSQL build with
 * pgvector, same Temporal CLI) and the dev stack's own start pieces (src/stack/).
 *
 * A test file that starts one calls close() in afterAll (or closeAllPrivateServers()); should the
 * test process die first, an exit hook stops what is still running and removes the folders.
 */
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { isRoot, run } from '../../../src/stack/exec';
import { HOST, tcpOpen, waitUntil } from '../../../src/stack/health';
import { ensureNamespace } from '../../../src/stack/namespaces';
import { readPid, spawnDetached, terminate } from '../../../src/stack/procs';
import { PG_CLIENT_ENV, pgServerOptions, postgresUser } from '../../../src/stack/servers/postgres';
import { temporalDevServerArgs } from '../../../src/stack/servers/temporal';
import { stackVars } from '../../helpers/stack';
import { signal } from './process-group';

/** Ports a private server must never take: the usual defaults and the dev stack's. */
const RESERVED_PORTS = new Set([5432, 55432, 7233, 8233, 17233, 18233, 19530, 19531, 19002, 9000, 9091]);

/** A free loopback port (asked of the kernel), never one of RESERVED_PORTS. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, HOST, () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    if (!RESERVED_PORTS.has(port)) return port;
  }
}

/** Everything still running, for the exit hook and closeAllPrivateServers(). */
const open = new Set<{ close(): Promise<void>; killNow(): void }>();
let exitHookInstalled = false;

/**
 * Starts a server living in folder `dir`, tracked until closed: the exit hook kills it (`killNow`,
 * sync) and removes the folder; closeAllPrivateServers() closes it. A failed start closes it.
 * Returns its close(): `stopNow`, then the folder removed.
 */
async function startTracked(
  dir: string,
  server: { start(): Promise<void>; stopNow(): Promise<void>; killNow(): void },
): Promise<() => Promise<void>> {
  const handle = {
    killNow() {
      server.killNow();
      rmSync(dir, { recursive: true, force: true });
    },
    async close() {
      open.delete(handle);
      await server.stopNow();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  open.add(handle);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const x of open) x.killNow();
    });
  }
  try {
    await server.start();
  } catch (err) {
    await handle.close();
    throw err;
  }
  return () => handle.close();
}

/** Closes every private server this test file started and has not closed (for afterAll). */
export async function closeAllPrivateServers(): Promise<void> {
  await Promise.all([...open].map((s) => s.close()));
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

export interface PrivatePostgres {
  host: string;
  port: number;
  user: string;
  /** The superuser's password when TCP logins need one (scram-sha-256). */
  password?: string;
  dataDir: string;
  /** PGHOST, PGPORT, PGUSER, PGDATABASE ('postgres'), DBOPS_PG_BIN_DIR, and PGPASSWORD when set. */
  env: Record<string, string>;
  /** The server log (pg_ctl -l). */
  logFile: string;
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  start(): Promise<void>;
  restart(): Promise<void>;
  /** Stops it (immediate) and removes its folder. */
  close(): Promise<void>;
}

/** `parentDir`: where the server's folder goes (default os.tmpdir()), e.g. a small tmpfs for a drill on free space. */
export async function startPrivatePostgres(
  opts: { password?: string; parentDir?: string } = {},
): Promise<PrivatePostgres> {
  const bin = stackVars().DBOPS_PG_BIN_DIR!;
  // Under os.tmpdir(): the postgres user must traverse every folder above (a checkout under /root
  // would not do); a short path keeps the Unix socket under its ~107-byte limit.
  const dir = mkdtempSync(path.join(opts.parentDir ?? os.tmpdir(), 'dbops-pg-'));
  chmodSync(dir, 0o755);
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'postgres.log');
  if (isRoot()) {
    const { uid, gid } = await postgresUser();
    chownSync(dir, uid, gid); // pg_ctl (as postgres) writes the log and socket here
  }
  const initdbArgs = ['-D', dataDir, '-U', 'postgres', '-E', 'UTF8', '--auth-local=trust'];
  const pwFile = path.join(dir, 'pwfile');
  if (opts.password !== undefined) {
    writeFileSync(pwFile, `${opts.password}\n`, { mode: 0o600 });
    if (isRoot()) {
      const { uid, gid } = await postgresUser();
      chownSync(pwFile, uid, gid);
    }
    initdbArgs.push('--auth-host=scram-sha-256', `--pwfile=${pwFile}`);
  } else initdbArgs.push('--auth-host=trust');
  const init = await run(path.join(bin, 'initdb'), initdbArgs, {
    asPostgres: true,
    cwd: '/',
    timeoutMs: 120_000,
    env: PG_CLIENT_ENV,
  });
  rmSync(pwFile, { force: true });
  if (!init.ok) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb of a private PostgreSQL failed (${init.reason})`);
  }
  const port = await freePort();
  const pgCtl = (args: string[], timeoutMs: number) =>
    run(path.join(bin, 'pg_ctl'), ['-D', dataDir, ...args], {
      asPostgres: true,
      cwd: '/',
      timeoutMs,
      env: PG_CLIENT_ENV,
    });
  let running = false;
  const start = async () => {
    const r = await run(
      path.join(bin, 'pg_ctl'),
      ['-D', dataDir, '-l', logFile, '-w', '-t', '60', '-o', pgServerOptions(port, dir), 'start'],
      { asPostgres: true, cwd: '/', detached: true, timeoutMs: 70_000, env: PG_CLIENT_ENV },
    );
    if (!r.ok)
      throw new Error(`private PostgreSQL on port ${port} did not start (${r.reason}); read ${logFile}`);
    running = true;
  };
  const stop = async (mode: 'fast' | 'immediate' = 'fast') => {
    const r = await pgCtl(['-m', mode, '-w', '-t', '30', 'stop'], 40_000);
    // "not running" is fine: a drill may stop a server twice.
    if (!r.ok && !/is server running/i.test(r.stderr)) {
      throw new Error(`private PostgreSQL on port ${port} did not stop (${r.reason})`);
    }
    running = false;
  };
  const close = await startTracked(dir, {
    start,
    async stopNow() {
      if (running) await stop('immediate').catch(() => undefined);
    },
    killNow() {
      // SIGQUIT is PostgreSQL's immediate shutdown.
      const pid = running ? readPid(path.join(dataDir, 'postmaster.pid')) : undefined;
      if (pid !== undefined) signal(pid, 'SIGQUIT');
    },
  });
  const env: Record<string, string> = {
    PGHOST: HOST,
    PGPORT: String(port),
    PGUSER: 'postgres',
    PGDATABASE: 'postgres',
    DBOPS_PG_BIN_DIR: bin,
    ...(opts.password !== undefined ? { PGPASSWORD: opts.password } : {}),
  };
  return {
    host: HOST,
    port,
    user: 'postgres',
    ...(opts.password !== undefined ? { password: opts.password } : {}),
    dataDir,
    env,
    logFile,
    stop,
    start,
    restart: async () => {
      await stop('fast');
      await start();
    },
    close,
  };
}

// ---------------------------------------------------------------------------------------------
// Temporal

export interface PrivateTemporal {
  /** host:port of its frontend (gRPC). */
  address: string;
  namespace: string;
  /** DBOPS_TEMPORAL_ADDRESS, DBOPS_TEMPORAL_NAMESPACE. */
  env: Record<string, string>;
  dbFile: string;
  logFile: string;
  /** Stops the server (SIGTERM to its process group, SIGKILL after 15 s); its database file stays. */
  stop(): Promise<void>;
  /** Starts it again on the same port and database file; resolves when the namespace answers. */
  start(): Promise<void>;
  restart(): Promise<void>;
  /** Stops it and removes its folder (database file included). */
  close(): Promise<void>;
}

const PRIVATE_NAMESPACE = 'dbops-drill';

export async function startPrivateTemporal(): Promise<PrivateTemporal> {
  const cli = stackVars().DBOPS_TEMPORAL_CLI!;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbops-temporal-'));
  const dbFile = path.join(dir, 'temporal.db');
  const logFile = path.join(dir, 'temporal.log');
  const port = await freePort();
  const address = `${HOST}:${port}`;
  let pid: number | undefined;

  const start = async () => {
    // Headless: no Web UI; the HTTP API and metrics ports are random free ones (the CLI's default).
    const child = spawnDetached(cli, temporalDevServerArgs({ port, dbFile }), { logFile, cwd: dir });
    pid = child;
    const ready = await waitUntil(
      async () => {
        if (!(await tcpOpen(port))) return false;
        // Also the health check: it answers only once the frontend serves the namespace.
        return ensureNamespace(address, PRIVATE_NAMESPACE).then(
          () => true,
          () => false,
        );
      },
      {
        timeoutMs: 90_000,
        intervalMs: 250,
        abort: () => {
          try {
            process.kill(child, 0);
            return undefined;
          } catch {
            return `the temporal process exited; read ${logFile}`;
          }
        },
      },
    );
    if (!ready.ok) throw new Error(`private Temporal on ${address} did not start: ${ready.reason}`);
  };
  const stop = async () => {
    if (pid === undefined) return;
    await terminate(pid, 15_000);
    pid = undefined;
  };
  const close = await startTracked(dir, {
    start,
    async stopNow() {
      // Its database goes with the folder: no need to wait for a graceful shutdown.
      if (pid !== undefined) await terminate(pid, 0);
      pid = undefined;
    },
    killNow() {
      if (pid !== undefined) signal(-pid, 'SIGKILL');
    },
  });
  return {
    address,
    namespace: PRIVATE_NAMESPACE,
    env: { DBOPS_TEMPORAL_ADDRESS: address, DBOPS_TEMPORAL_NAMESPACE: PRIVATE_NAMESPACE },
    dbFile,
    logFile,
    stop,
    start,
    restart: async () => {
      await stop();
      await start();
    },
    close,
  };
}
