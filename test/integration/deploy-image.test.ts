import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/config';

/**
 * The container image without a container engine: the Dockerfile is linted with hadolint and its
 * build steps are performed on the host by deploy/scripts/rehearse-image-build.sh.
 */
const run = promisify(execFile);
const dockerfile = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
let hadolint: string;
let tmp: string;

async function lint(file: string): Promise<{ code: number; output: string }> {
  const config = path.join(REPO_ROOT, '.hadolint.yaml');
  try {
    const { stdout } = await run(hadolint, ['--no-color', '--config', config, file]);
    return { code: 0, output: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, output: `${e.stdout}${e.stderr}` };
  }
}

/** Sources of `COPY <src>... <dest>` from the build context (not `--from=` stages). */
function contextCopies(): string[] {
  return [...dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)].flatMap((m) =>
    m[1]!.trim().split(/\s+/).slice(0, -1),
  );
}

beforeAll(async () => {
  const { stdout } = await run('bash', [path.join(REPO_ROOT, 'deploy/scripts/tools.sh'), 'hadolint'], {
    timeout: 280_000,
  });
  hadolint = /^HADOLINT=(.+)$/m.exec(stdout)![1]!;
  tmp = mkdtempSync(path.join(os.tmpdir(), 'dbops-image-'));
}, 300_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('Dockerfile', () => {
  it('passes hadolint', async () => {
    const { code, output } = await lint(path.join(REPO_ROOT, 'Dockerfile'));
    expect(output).toBe('');
    expect(code).toBe(0);
  });

  it('hadolint really reports problems (a bad Dockerfile fails)', async () => {
    const bad = path.join(tmp, 'Dockerfile.bad');
    writeFileSync(bad, 'FROM node:latest\nRUN apt-get update && apt-get install -y zstd\nCMD node app.js\n');
    const { code, output } = await lint(bad);
    expect(code).not.toBe(0);
    expect(output).toContain('DL3007'); // latest tag
    expect(output).toContain('DL3025'); // CMD not in JSON form
  });

  it('builds a non-root runtime with PGDG client tools and server of PG_MAJOR with pgvector, zstd, age, ssh-keygen and the dbops entrypoint', () => {
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(3);
    expect(dockerfile).toMatch(/^FROM node:\$\{NODE_VERSION\}-bookworm-slim AS runtime$/m);
    expect(dockerfile).toMatch(/^ARG PG_MAJOR=18$/m);
    expect(dockerfile).toContain('https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main');
    expect(dockerfile).toMatch(
      /apt-get install -y --no-install-recommends "postgresql-client-\$\{PG_MAJOR\}" "postgresql-\$\{PG_MAJOR\}" \\\n\s+"postgresql-\$\{PG_MAJOR\}-pgvector" zstd age openssh-client \\$/m,
    );
    // ssh-keygen proves signed restore decisions; it refuses to run for a uid without a passwd
    // entry, so the runtime's uid 10001 must be a real user (useradd), and the lists are cleaned.
    // Point-in-time restore runs a temporary server of PG_MAJOR with pgvector; no cluster at install.
    expect(dockerfile).toContain(
      "echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/dbops.conf",
    );
    expect(dockerfile).toMatch(/^ && "\/usr\/lib\/postgresql\/\$\{PG_MAJOR\}\/bin\/postgres" --version \\$/m);
    expect(dockerfile).toMatch(/^ && command -v ssh-keygen \\$/m);
    expect(dockerfile).toMatch(/useradd --uid 10001 /);
    expect(dockerfile).toContain('rm -rf /var/lib/apt/lists/*');
    expect(dockerfile).toContain('DBOPS_PG_BIN_DIR=/usr/lib/postgresql/${PG_MAJOR}/bin');
    expect(dockerfile).toContain('npm ci --omit=dev');
    expect(dockerfile).toMatch(/^USER 10001:10001$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "\/app\/bin\/dbops\.js"\]$/m);
    expect(dockerfile).toMatch(/^CMD \["worker"\]$/m);
  });

  it('.dockerignore lets in exactly what the Dockerfile copies, and the rehearsal copies the same', () => {
    const ignore = readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8');
    const allowed = [...ignore.matchAll(/^!(.+?)\/?$/gm)].map((m) => m[1]!);
    const copied = contextCopies().map((s) => s.replace(/^\.\//, '').replace(/\/$/, ''));
    expect(new Set(copied)).toEqual(new Set(allowed));
    const script = readFileSync(path.join(REPO_ROOT, 'deploy/scripts/rehearse-image-build.sh'), 'utf8');
    const rehearsed = /^CONTEXT_FILES=\((.+)\)$/m.exec(script)![1]!.split(/\s+/);
    expect(new Set(rehearsed)).toEqual(new Set(copied));
  });
});

describe('image build rehearsal on the host', () => {
  it('builds, bundles, installs production deps only and runs `dbops --help` from the result', async () => {
    const { stdout } = await run('bash', [path.join(REPO_ROOT, 'deploy/scripts/rehearse-image-build.sh')], {
      env: { ...process.env, REUSE_NODE_MODULES: '1' },
      timeout: 590_000,
      maxBuffer: 16 << 20,
    }).catch((err: { message: string; stdout?: string; stderr?: string }) => {
      const tail = `${err.stdout ?? ''}${err.stderr ?? ''}`.split('\n').slice(-40).join('\n');
      throw new Error(`${err.message}\n${tail}`);
    });
    expect(stdout).toContain('Usage: dbops');
    expect(stdout).toMatch(/^workflow bundle: .*\/app\/dist\/workflow-bundle\.js$/m);
    expect(stdout).toMatch(/^sealed workflow bundle: .*\/app\/dist\/workflow-bundle\.sealed\.js$/m);
    expect(stdout).toMatch(/^sealed failure converter: .*\/app\/dist\/src\/codec\/sealed-failures\.js$/m);
    expect(stdout).toMatch(/^runtime \/app: \S+ \(production node_modules \S+\)$/m);
    expect(stdout).toContain('image build rehearsal passed');
    // ~1.5 min on an idle 2-core machine (tsc + bundle alongside the production install); the
    // margin is for machines shared with other test runs.
  }, 600_000);
});
