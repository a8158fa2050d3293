import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './tls';

/**
 * Debian's nginx binary, unpacked without root or installing (as deploy/scripts/tools.sh does for
 * promtool): `apt-get download nginx` and `dpkg-deb -x`, cached in the stack's tools folder. Its
 * libraries (libssl3, libpcre2, zlib) are already on any machine that runs the dev stack.
 */
export function nginxBinary(stackHome: string): string {
  const home = path.join(stackHome, 'tools', 'nginx-deb');
  const bin = path.join(home, 'usr', 'sbin', 'nginx');
  if (existsSync(bin)) return bin;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'dbops-nginx-'));
  try {
    try {
      execFileSync('apt-get', ['download', '-q', 'nginx'], { cwd: tmp, stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      throw new Error(
        `apt-get download nginx failed (${String((err as { stderr?: unknown }).stderr ?? err).trim()}): run 'apt-get update' (the package lists are missing or stale), then the test again`,
      );
    }
    const deb = path.join(tmp, execFileSync('ls', [tmp], { encoding: 'utf8' }).trim().split('\n')[0]!);
    const unpacked = path.join(tmp, 'x');
    execFileSync('dpkg-deb', ['-x', deb, unpacked]);
    mkdirSync(path.dirname(home), { recursive: true });
    renameSync(unpacked, home);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return bin;
}

export interface GrpcTlsProxy {
  readonly address: string;
  /** nginx's access log: one line per gRPC call it passed on (method path and status). */
  accessLog(): string;
  /**
   * The access log once it has a line matching `line` (at most `timeoutMs`): nginx writes a call's
   * line after the response has gone out, so a client holding its answer can read the log too soon.
   */
  accessLogWith(line: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

/**
 * nginx terminating TLS in front of a gRPC server (`grpc_pass`), asking every client for a
 * certificate signed by `clientCa` (`ssl_verify_client on`). One process (no master, no daemon):
 * the test owns it and stops it by its pid.
 */
export async function startGrpcTlsProxy(opts: {
  nginx: string;
  upstream: string;
  cert: string;
  key: string;
  clientCa: string;
}): Promise<GrpcTlsProxy> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbops-grpc-proxy-'));
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 256; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port} ssl http2;
    ssl_certificate ${opts.cert};
    ssl_certificate_key ${opts.key};
    ssl_client_certificate ${opts.clientCa};
    ssl_verify_client on;
    # Temporal's long polls last up to 70 s.
    grpc_read_timeout 300s;
    grpc_send_timeout 300s;
    client_max_body_size 0;
    location / { grpc_pass grpc://${opts.upstream}; }
  }
}
`,
  );
  const child: ChildProcess = spawn(opts.nginx, ['-p', dir, '-c', conf, '-e', `${dir}/error.log`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 15_000;
  while (!(await listening(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      const log = existsSync(`${dir}/error.log`) ? readFileSync(`${dir}/error.log`, 'utf8') : '';
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`nginx did not start on 127.0.0.1:${port}: ${stderr}${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    address: `127.0.0.1:${port}`,
    accessLog: () => readFileSync(`${dir}/access.log`, 'utf8'),
    async accessLogWith(line, timeoutMs = 5_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const log = readFileSync(`${dir}/access.log`, 'utf8');
        if (line.test(log) || Date.now() > until) return log;
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
