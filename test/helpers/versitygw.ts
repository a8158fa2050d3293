import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { stackVars } from './stack';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function waitForPort(port: number, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`versitygw did not listen on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface OwnS3 {
  endpoint: string;
  bucket: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * A private versitygw (real S3 server) for tests that must stop or break S3 without touching
 * the shared dev stack. Same credentials as the dev stack's, its own port and folder.
 */
export async function startOwnS3(bucket = 'test-bucket'): Promise<OwnS3> {
  const vars = stackVars();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbops-s3-'));
  mkdirSync(path.join(dir, bucket));
  const port = await freePort();
  const child = spawn(
    path.join(vars.DBOPS_STACK_HOME!, 'bin', 'versitygw'),
    ['--port', `127.0.0.1:${port}`, 'posix', dir],
    {
      env: {
        ...process.env,
        ROOT_ACCESS_KEY: vars.AWS_ACCESS_KEY_ID,
        ROOT_SECRET_KEY: vars.AWS_SECRET_ACCESS_KEY,
      },
      stdio: 'ignore',
    },
  );
  await waitForPort(port, 15_000);
  let stopped = false;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    process: child,
    async stop() {
      if (!stopped) {
        stopped = true;
        if (child.exitCode === null) {
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          await exited;
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
