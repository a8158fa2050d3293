import { spawn, type ChildProcess } from 'node:child_process';
import { chown, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { Client } from 'pg';
import { FailureType, failure } from '../../../common/failures';
import { toolEnv } from '../binaries';

/**
 * A temporary PostgreSQL for point-in-time recovery: started from the configured bin dir on a free
 * loopback port, on a data directory dbops assembled from base backups, never reachable from
 * outside (127.0.0.1, its own socket folder, an hba file of its own that trusts loopback only),
 * archiving nothing, and always stopped by its owner (stop()). The recovered cluster is a copy of
 * production, so its roles are production's: dbops connects as the configured user, by trust.
 */

/** PostgreSQL refuses to run as root: as root (the dev stack, tests) it runs as `postgres`. */
export const runsAsRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const passwd = await readFile('/etc/passwd', 'utf8');
  const line = passwd.split('\n').find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined)
    throw failure(
      FailureType.Misconfigured,
      'running as root, point-in-time recovery starts its temporary PostgreSQL as the `postgres` user, which does not exist: run the worker as a non-root user or create the postgres user',
    );
  return { uid: Number(uid), gid: Number(gid) };
}

/** Gives `paths` (recursively where asked) to the user PostgreSQL runs as, when that is not us. */
export async function giveToPostgres(...paths: string[]): Promise<void> {
  if (!runsAsRoot()) return;
  const { uid, gid } = await postgresIds();
  const { execa } = await import('execa');
  for (const p of paths)
    await execa('chown', ['-R', `${uid}:${gid}`, p], { env: toolEnv(), extendEnv: false });
}

/**
 * As root, the temporary server runs as `postgres`, which must reach its data directory: every
 * folder above it must let it through (a 0700 scratch folder of root's does not).
 */
export async function assertPostgresCanReach(dir: string, variable: string): Promise<void> {
  if (!runsAsRoot()) return;
  const { execa } = await import('execa');
  const r = await execa('runuser', ['-u', 'postgres', '--', 'test', '-x', dir], {
    env: toolEnv(),
    extendEnv: false,
    reject: false,
  });
  if (r.exitCode !== 0)
    throw failure(
      FailureType.Misconfigured,
      `the worker runs as root, so point-in-time recovery runs its temporary PostgreSQL as the postgres user, which cannot reach ${dir}: point ${variable} at a folder every user may traverse (e.g. /var/tmp), or run the worker as a non-root user`,
    );
}

/** A port nobody listens on now (the kernel's choice); PostgreSQL binding it moments later may still race. */
export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface InstanceOptions {
  /** The folder with `postgres` (DBOPS_PG_BIN_DIR or the resolved one). */
  readonly binDir: string;
  readonly dataDir: string;
  /** Written by the server: its log, read back in errors. */
  readonly logFile: string;
  /** `-c name=value` settings on top of the data directory's own (recovery targets, restore_command). */
  readonly settings: Readonly<Record<string, string>>;
  /** The role dbops connects as (the configured PGUSER, which the copy of the cluster has). */
  readonly user: string;
}

export interface ScratchInstance {
  readonly port: number;
  readonly child: ChildProcess;
  /** Resolves with the exit code once the server has exited (on its own or by stop()). */
  readonly exited: Promise<number | null>;
  /** A connection to `database` on the instance. */
  connect(database: string): Promise<Client>;
  /** The last lines of the server's log. */
  logTail(lines?: number): Promise<string>;
  /** Immediate shutdown (nothing of it is kept), then SIGKILL after 10 s; idempotent. */
  stop(): Promise<void>;
}

/** Settings that keep the copy local, quiet and harmless whatever production's postgresql.conf says. */
function isolation(dataDir: string, port: number, hbaFile: string): Record<string, string> {
  return {
    port: String(port),
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dataDir,
    hba_file: hbaFile,
    ident_file: hbaFile,
    ssl: 'off',
    archive_mode: 'off',
    summarize_wal: 'off',
    hot_standby: 'on',
    // A copy never streams to anyone, and production's replication settings must not reach out.
    primary_conninfo: '',
    primary_slot_name: '',
    shared_preload_libraries: '',
    logging_collector: 'off',
    log_min_messages: 'log',
  };
}

export async function startScratchInstance(opts: InstanceOptions): Promise<ScratchInstance> {
  const port = await freeLoopbackPort();
  const hbaFile = path.join(path.dirname(opts.dataDir), 'pitr_hba.conf');
  await writeFile(hbaFile, 'local all all trust\nhost all all 127.0.0.1/32 trust\n', { mode: 0o644 });
  const settings = { ...opts.settings, ...isolation(opts.dataDir, port, hbaFile) };
  const args = ['-D', opts.dataDir, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  const postgres = path.join(opts.binDir, 'postgres');
  const [file, argv] = runsAsRoot()
    ? ['runuser', ['-u', 'postgres', '--', postgres, ...args]]
    : [postgres, args];
  if (runsAsRoot()) {
    const { uid, gid } = await postgresIds();
    await writeFile(opts.logFile, '');
    await chown(opts.logFile, uid, gid);
  }
  const { openSync, closeSync } = await import('node:fs');
  const log = openSync(opts.logFile, 'a');
  // Its own process group: stop() reaches the postmaster, and the worker's signals do not.
  const child = spawn(file, argv, {
    stdio: ['ignore', log, log],
    env: { ...toolEnv(), LANG: 'C.UTF-8' },
    detached: true,
  });
  closeSync(log);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(-1));
  });
  let stopped = false;
  const instance: ScratchInstance = {
    port,
    child,
    exited,
    async connect(database) {
      const client = new Client({
        host: '127.0.0.1',
        port,
        user: opts.user,
        database,
        connectionTimeoutMillis: 5_000,
      });
      client.on('error', () => undefined);
      await client.connect();
      return client;
    },
    async logTail(lines = 15) {
      const text = await readFile(opts.logFile, 'utf8').catch(() => '');
      return text.trimEnd().split('\n').slice(-lines).join('\n');
    },
    async stop() {
      if (stopped) return exited.then(() => undefined);
      stopped = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const signal = (s: NodeJS.Signals) => {
        try {
          // runuser passes signals on; the group holds the postmaster either way.
          process.kill(-child.pid!, s);
        } catch {
          // already gone
        }
      };
      signal('SIGQUIT');
      const killed = setTimeout(() => signal('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killed);
    },
  };
  return instance;
}
