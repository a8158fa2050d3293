/**
 * The dev-stack manager (`npm run stack -- …`) against the real stack: env output, status, an
 * idempotent second `up`, and stopping/starting one server (s3, the quickest to come back).
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ENV_NAMES } from '../src/stack/envvars';
import { isAlive } from '../src/stack/procs';
import { freeLoopbackPort } from '../src/worker/runtime';
import { stackVars, testRun, uniqueSuffix } from './helpers/stack';
import {
  NOT_RUNNING_MESSAGE,
  SERVER_NAMES,
  serverHealthy,
  serverStatus,
  stackEnv,
  startServer,
  stopServer,
} from '../src/stack/index';

const repo = path.resolve(__dirname, '..');
const tsx = path.join(repo, 'node_modules', '.bin', 'tsx');

async function stack(...args: string[]) {
  return stackWith({}, ...args);
}

async function stackWith(env: Record<string, string>, ...args: string[]) {
  const r = await execa(tsx, ['src/stack/main.ts', ...args], {
    cwd: repo,
    reject: false,
    stdin: 'ignore',
    env,
  });
  return { code: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

interface Status {
  home: string;
  servers: { name: string; state: string; pid: number | null; address: string; log: string }[];
  worker: { state: string; pid: number | null; address: string; log: string; note?: string };
}

async function status(env: Record<string, string> = {}): Promise<Status> {
  const r = await stackWith(env, 'status', '--json');
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Status;
}

function pids(s: Status): Record<string, number | null> {
  return Object.fromEntries(s.servers.map((x) => [x.name, x.pid]));
}

/** The same as `status --json`, in-process (spares a CLI start where the CLI is not the point). */
async function statusInProcess(): Promise<Status> {
  return {
    home: '',
    servers: await Promise.all(SERVER_NAMES.map((n) => serverStatus(n))),
    worker: { state: '', pid: null, address: '', log: '' },
  };
}

describe('dev stack (npm run stack)', () => {
  beforeAll(async () => {
    // test/run.sh brings the stack up first; on an installed machine this is a few seconds.
    const r = await stack('up');
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  }, 900_000);

  afterAll(async () => {
    // Whatever happened above, leave s3 running for the other test files.
    if (!(await serverHealthy('s3'))) await startServer('s3');
  }, 60_000);

  it('env prints only export lines, with every variable, and they eval in a shell', async () => {
    const r = await execa('npm', ['run', '-s', 'stack', '--', 'env'], { cwd: repo, stdin: 'ignore' });
    const lines = r.stdout.split('\n');
    expect(lines).toHaveLength(ENV_NAMES.length);
    for (const line of lines) expect(line).toMatch(/^export [A-Z][A-Z0-9_]*=\S+$/);

    const script = `eval "$STACK_ENV_OUTPUT" && for n in ${ENV_NAMES.join(' ')}; do printf '%s=%s\\n' "$n" "\${!n}"; done`;
    const evaluated = await execa('bash', ['-c', script], { env: { STACK_ENV_OUTPUT: r.stdout } });
    const values = Object.fromEntries(
      evaluated.stdout.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    const recorded = stackEnv();
    for (const name of ENV_NAMES) {
      expect(values[name], name).toBeTruthy();
      expect(values[name], name).toBe(recorded[name]);
    }
    expect(values.PGPORT).toBe('55432');
    expect(values.DBOPS_TEMPORAL_ADDRESS).toBe('127.0.0.1:17233');
    expect(values.DBOPS_MILVUS_ADDRESS).toBe('127.0.0.1:19531');
    expect(values.DBOPS_S3_ENDPOINT).toBe('http://127.0.0.1:19002');
  }, 60_000);

  it('stackEnv() names the fix when the stack is not up', () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'dbops-stack-empty-'));
    const saved = process.env.DBOPS_STACK_HOME;
    process.env.DBOPS_STACK_HOME = empty;
    try {
      expect(() => stackEnv()).toThrow(NOT_RUNNING_MESSAGE);
    } finally {
      if (saved === undefined) delete process.env.DBOPS_STACK_HOME;
      else process.env.DBOPS_STACK_HOME = saved;
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('status --json shows every server running', async () => {
    const s = await status();
    expect(s.servers.map((x) => x.name)).toEqual(['postgres', 'temporal', 'milvus', 's3']);
    for (const server of s.servers) {
      expect(server.state, server.name).toBe('running');
      expect(server.pid, server.name).toBeGreaterThan(0);
    }
  }, 30_000);

  it('a second up is fast and changes nothing', async () => {
    const before = pids(await statusInProcess());
    const t0 = Date.now();
    const r = await stack('up');
    const ms = Date.now() - t0;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('already installed');
    expect(r.stdout).not.toMatch(/started in/);
    expect(ms).toBeLessThan(15_000);
    expect(pids(await statusInProcess())).toEqual(before);
  }, 60_000);

  it('down s3 stops only s3, and up brings it back', async () => {
    const before = pids(await statusInProcess());
    const down = await stack('down', 's3');
    expect(down.code, down.stderr).toBe(0);

    const stopped = await status();
    const byName = Object.fromEntries(stopped.servers.map((x) => [x.name, x]));
    expect(byName.s3?.state).toBe('stopped');
    expect(byName.s3?.pid).toBeNull();
    for (const name of ['postgres', 'temporal', 'milvus']) expect(byName[name]?.pid, name).toBe(before[name]);

    const up = await stack('up');
    expect(up.code, up.stderr).toBe(0);
    const after = await statusInProcess();
    const s3 = after.servers.find((x) => x.name === 's3');
    expect(s3?.state).toBe('running');
    expect(s3?.pid).not.toBe(before.s3);
    expect(await serverHealthy('s3')).toBe(true);
  }, 60_000);

  it('stopServer/startServer/serverHealthy work in-process', async () => {
    await stopServer('s3');
    expect(await serverHealthy('s3')).toBe(false);
    const started = await startServer('s3');
    expect(started.state).toBe('running');
    expect(await serverHealthy('s3')).toBe(true);
  }, 60_000);

  it('stack worker starts a background worker that status lists and down stops, before the servers', async () => {
    // A stack home of its own (a copy of the settings only), so the user's quickstart worker, if
    // any, is never touched; its servers are not this home's, so `down` stops only the worker.
    const home = mkdtempSync(path.join(tmpdir(), 'dbops-stack-worker-'));
    const real = stackVars();
    mkdirSync(path.join(home, 'run'));
    copyFileSync(path.join(real.DBOPS_STACK_HOME!, 'stack.env.json'), path.join(home, 'stack.env.json'));
    const port = await freeLoopbackPort();
    const env = {
      ...real,
      DBOPS_STACK_HOME: home,
      DBOPS_HTTP_PORT: String(port),
      DBOPS_TEMPORAL_NAMESPACE: testRun().namespace,
      DBOPS_TASK_QUEUE: `test-stack-worker-${uniqueSuffix()}`,
      DBOPS_STORAGE: 'local',
      DBOPS_BACKUP_DIR: path.join(home, 'backups'),
    };
    const serversBefore = pids(await statusInProcess());
    try {
      const start = await stackWith(env, 'worker');
      expect(start.code, `${start.stdout}\n${start.stderr}`).toBe(0);
      expect(start.stdout).toMatch(/^worker +started in [\d.]+s \(pid \d+/m);
      const again = await stackWith(env, 'worker');
      expect(again.stdout).toMatch(/^worker +already running \(pid \d+\)/m);

      const up = await status(env);
      expect(up.worker).toMatchObject({ state: 'running', address: `http://127.0.0.1:${port}/readyz` });
      const pid = up.worker.pid!;
      expect(isAlive(pid)).toBe(true);
      const table = await stackWith(env, 'status');
      expect(table.stdout).toMatch(
        new RegExp(`^worker +http://127\\.0\\.0\\.1:${port}/readyz +running +${pid} `, 'm'),
      );

      const down = await stackWith(env, 'down');
      expect(down.code, down.stderr).toBe(0);
      // The worker first, so it never retries a stopped Temporal server.
      expect(down.stdout.split('\n')[0]).toMatch(/^worker +stopped$/);
      expect(isAlive(pid)).toBe(false);
      expect((await status(env)).worker).toMatchObject({ state: 'stopped', pid: null });
      // This home started no server: the real ones still run, untouched.
      expect(pids(await statusInProcess())).toEqual(serversBefore);
    } finally {
      await stackWith(env, 'down', 'worker');
      rmSync(home, { recursive: true, force: true });
    }
  }, 180_000);
});
