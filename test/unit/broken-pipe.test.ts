import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const repo = path.resolve(__dirname, '..', '..');

/** Runs a CLI whose stdout reader is gone before it writes (as with `| head -1` on long output). */
function runWithClosedReader(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DBOPS_STACK_HOME: path.join(repo, 'test', 'no-such-stack') },
    });
    child.stdout.destroy(); // the reader went away: the CLI's first write fails with EPIPE
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stderr }));
  });
}

describe('a closed pipe on stdout ends the CLI quietly', () => {
  it.each([
    ['dbops config', ['src/cli/main.ts', 'config']],
    ['dbops --help', ['src/cli/main.ts', '--help']],
    ['npm run stack -- status', ['src/stack/main.ts', 'status']],
  ])(
    '%s',
    async (_name, args) => {
      const r = await runWithClosedReader(args);
      expect(r.stderr).not.toMatch(/EPIPE|Unhandled 'error' event/);
      expect(r.code).toBe(0);
    },
    30_000,
  );
});
