import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Which dbops build is running: the package version and the commit it was built from. Workers name
 * it in their identity (every poller the Web UI and `dbops doctor` list, every activity attempt in
 * a history) and as the SDK build id (every workflow task completed in a history), so an upgrade
 * can be followed run by run. `npm run build` writes dist/build-info.json (the image has no .git;
 * the Docker build passes DBOPS_COMMIT); a checkout asks git.
 */
export interface BuildInfo {
  readonly version: string;
  /** Abbreviated commit, `-dirty` when a checkout has uncommitted changes, or `unknown`. */
  readonly commit: string;
  /** `<version>+<commit>`: the worker's build id. */
  readonly id: string;
}

/** Written by scripts/bundle-workflows.ts next to the workflow bundle. */
export const BUILD_INFO_FILE = 'build-info.json';

/**
 * The version in dbops's package.json: the nearest package.json named `dbops` above `from`. That is
 * ../package.json from src/ (tsx) and ../../package.json from dist/src/ (bin/dbops.js, also in the
 * image, where /app holds dist/ and package.json).
 */
export function packageVersion(from: string = __dirname): string {
  return dbopsPackage(from)?.version ?? 'unknown';
}

function dbopsPackage(from: string): { dir: string; version: string } | undefined {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    let text: string | undefined;
    try {
      text = readFileSync(path.join(dir, 'package.json'), 'utf8');
    } catch {
      text = undefined;
    }
    if (text !== undefined) {
      const pkg = JSON.parse(text) as { name?: unknown; version?: unknown };
      if (pkg.name === 'dbops' && typeof pkg.version === 'string') return { dir, version: pkg.version };
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** The checkout's commit (`-dirty` with uncommitted changes), or undefined outside a git checkout. */
export function gitCommit(dir: string): string | undefined {
  const git = (...args: string[]) =>
    execFileSync('git', ['-C', dir, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  try {
    const commit = git('rev-parse', '--short=12', 'HEAD');
    return git('status', '--porcelain', '--untracked-files=no') ? `${commit}-dirty` : commit;
  } catch {
    return undefined;
  }
}

function builtCommit(root: string): string | undefined {
  try {
    const info = JSON.parse(readFileSync(path.join(root, 'dist', BUILD_INFO_FILE), 'utf8')) as {
      commit?: unknown;
    };
    return typeof info.commit === 'string' && info.commit ? info.commit : undefined;
  } catch {
    return undefined;
  }
}

let cached: BuildInfo | undefined;

/** This process's build (computed once). A run from dist/ reads the build's file; a checkout asks git. */
export function buildInfo(): BuildInfo {
  if (cached) return cached;
  const pkg = dbopsPackage(__dirname);
  const root = pkg?.dir ?? path.resolve(__dirname, '..');
  const runningBuild = __dirname.includes(`${path.sep}dist${path.sep}`);
  const commit = (runningBuild ? builtCommit(root) : gitCommit(root)) ?? 'unknown';
  const version = pkg?.version ?? 'unknown';
  cached = Object.freeze({ version, commit, id: `${version}+${commit}` });
  return cached;
}

/** A worker's identity: the SDK's default `<pid>@<host>` plus ` dbops/<build id>`. */
export function workerIdentity(
  build: BuildInfo = buildInfo(),
  pid = process.pid,
  host = os.hostname(),
): string {
  // `<pid>@<host>` first, as the SDK's default identity: drills and operators find the process by it.
  return `${pid}@${host} dbops/${build.id}`;
}

/** The build id in a poller's identity, or undefined for a worker that does not say (older builds). */
export function buildOfIdentity(identity: string): string | undefined {
  return / dbops\/(\S+)$/.exec(identity)?.[1];
}
