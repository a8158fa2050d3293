/**
 * Where the dev stack lives on disk.
 *
 * Stack home: $DBOPS_STACK_HOME, else <repo>/.stack. As root, PostgreSQL runs as the `postgres`
 * system user, which must be able to traverse every folder on the way to its bin and data dirs;
 * when <repo>/.stack is not reachable for it (e.g. a clone under /root), the real home is
 * /var/tmp/dbops-stack-<hash of the repo path> and <repo>/.stack is a symlink to it.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, realpathSync, symlinkSync } from 'node:fs';
import path from 'node:path';

import { canPostgresTraverse, isRoot } from './exec';

export const SERVER_NAMES = ['postgres', 'temporal', 'milvus', 's3'] as const;
export type ServerName = (typeof SERVER_NAMES)[number];

export function isServerName(name: string): name is ServerName {
  return (SERVER_NAMES as readonly string[]).includes(name);
}

/** The checkout this file belongs to (src/stack/ → two levels up). */
export function repoRoot(): string {
  return path.resolve(__dirname, '..', '..');
}

export interface StackPaths {
  home: string;
  venv: string;
  venvBin: string;
  /** Written after a successful pip install: { packages, pgBinDir }. */
  venvMarker: string;
  bin: string;
  versitygw: string;
  /** age and age-keygen (client-side backup encryption), go-installed beside versitygw. */
  age: string;
  ageKeygen: string;
  tools: string;
  flywayDir: string;
  flywayTarball: string;
  flyway: string;
  data: string;
  pgData: string;
  temporalDb: string;
  milvusData: string;
  s3Data: string;
  run: string;
  logs: string;
  envJson: string;
  lockFile: string;
  pidFile(name: ServerName): string;
  logFile(name: ServerName): string;
}

export const FLYWAY_VERSION = '10.22.0';

export function stackPaths(home: string): StackPaths {
  const venv = path.join(home, 'venv');
  const tools = path.join(home, 'tools');
  const data = path.join(home, 'data');
  const run = path.join(home, 'run');
  const logs = path.join(home, 'logs');
  const flywayDir = path.join(tools, `flyway-${FLYWAY_VERSION}`);
  return {
    home,
    venv,
    venvBin: path.join(venv, 'bin'),
    venvMarker: path.join(venv, '.dbops-installed.json'),
    bin: path.join(home, 'bin'),
    versitygw: path.join(home, 'bin', 'versitygw'),
    age: path.join(home, 'bin', 'age'),
    ageKeygen: path.join(home, 'bin', 'age-keygen'),
    tools,
    flywayDir,
    flywayTarball: path.join(tools, `flyway-commandline-${FLYWAY_VERSION}.tar.gz`),
    flyway: path.join(flywayDir, 'flyway'),
    data,
    pgData: path.join(data, 'pg'),
    temporalDb: path.join(data, 'temporal.db'),
    milvusData: path.join(data, 'milvus'),
    s3Data: path.join(data, 's3'),
    run,
    logs,
    envJson: path.join(home, 'stack.env.json'),
    lockFile: path.join(run, 'stack.lock'),
    pidFile: (name) => path.join(run, `${name}.pid`),
    // PostgreSQL writes its log inside its data dir (writable by `postgres` when running as root);
    // logs/postgres.log is a symlink to it, made by the postgres definition.
    logFile: (name) =>
      name === 'postgres' ? path.join(data, 'pg', 'server.log') : path.join(logs, `${name}.log`),
  };
}

function defaultHome(): string {
  return path.join(repoRoot(), '.stack');
}

function relocatedHome(): string {
  const hash = createHash('sha256').update(repoRoot()).digest('hex').slice(0, 12);
  return `/var/tmp/dbops-stack-${hash}`;
}

/**
 * The stack home for reading (status, env, logs, down): never creates anything.
 * Symlinks are resolved so that paths handed to servers are the real ones.
 */
export function homeForRead(): string {
  const configured = process.env.DBOPS_STACK_HOME;
  const home = configured ? path.resolve(configured) : defaultHome();
  try {
    return realpathSync(home);
  } catch {
    return home;
  }
}

function nearestExisting(dir: string): string {
  let d = dir;
  while (!existsSync(d)) {
    const parent = path.dirname(d);
    if (parent === d) break;
    d = parent;
  }
  return d;
}

/**
 * The stack home for `up`: creates it, and as root makes sure `postgres` can reach it
 * (relocating <repo>/.stack to /var/tmp when it cannot). Returns the real (symlink-free) path.
 */
export async function prepareHome(say: (line: string) => void): Promise<string> {
  const configured = process.env.DBOPS_STACK_HOME;
  const wanted = configured ? path.resolve(configured) : defaultHome();
  if (isRoot() && !(await canPostgresTraverse(realpathOrSelf(nearestExisting(wanted))))) {
    if (configured) {
      throw new Error(
        `DBOPS_STACK_HOME=${configured} is not traversable by the postgres user (PostgreSQL refuses to run as root ` +
          `and runs as postgres): choose a folder under /var/tmp, or chmod o+x every folder on the way`,
      );
    }
    const linkStat = lstatOrUndefined(wanted);
    if (linkStat && !linkStat.isSymbolicLink()) {
      throw new Error(
        `${wanted} is not traversable by the postgres user. Remove it (rm -rf ${wanted}) and run up again: ` +
          `the stack will then live in ${relocatedHome()} with ${wanted} as a symlink to it`,
      );
    }
    const real = relocatedHome();
    mkdirSync(real, { recursive: true, mode: 0o755 });
    if (!linkStat) {
      symlinkSync(real, wanted);
      say(
        `${wanted} is not reachable by the postgres user: the stack lives in ${real} (${wanted} is a symlink to it)`,
      );
    }
    const resolved = realpathSync(wanted);
    if (!(await canPostgresTraverse(resolved))) {
      throw new Error(
        `${wanted} points to ${resolved}, which the postgres user cannot traverse; remove the symlink`,
      );
    }
    return resolved;
  }
  mkdirSync(wanted, { recursive: true, mode: 0o755 });
  return realpathSync(wanted);
}

function realpathOrSelf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/** lstat, or undefined when nothing is there (a dangling symlink still counts as there). */
export function lstatOrUndefined(p: string) {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}
