import { readTlsFile } from '../tls-files';
import type { ConnectionOptions } from 'node:tls';
import { FailureType, failure } from '../../common/failures';

/**
 * libpq's TLS files (PGSSLROOTCERT, PGSSLCERT, PGSSLKEY, PGSSLCRL): paths, as libpq reads them, so
 * pg_dump/pg_restore/psql get the very same variables and the `pg` driver reads the same files.
 */
export interface PgSslFiles {
  readonly rootCert: string | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly crl: string | undefined;
}

export const NO_SSL_FILES: PgSslFiles = {
  rootCert: undefined,
  cert: undefined,
  key: undefined,
  crl: undefined,
};

/**
 * The mode libpq really uses: `require` with a root certificate given behaves like `verify-ca`
 * (libpq's documented rule, kept for its old users), so the driver must check the CA there too,
 * or the driver and pg_dump would disagree about the same server.
 */
export function effectiveSslmode(sslmode: string | undefined, files: PgSslFiles): string | undefined {
  return sslmode === 'require' && files.rootCert !== undefined ? 'verify-ca' : sslmode;
}

/**
 * How the `pg` connection is protected, for `dbops doctor`: `encrypted` is the server's own word
 * (pg_stat_ssl), the rest what the settings made the driver check.
 */
export function pgSecurity(encrypted: boolean, sslmode: string | undefined, files: PgSslFiles): string {
  if (!encrypted) return 'plain';
  const ca = files.rootCert !== undefined && files.rootCert !== 'system' ? 'PGSSLROOTCERT' : 'system CAs';
  switch (effectiveSslmode(sslmode, files)) {
    case 'verify-full':
      return `verified TLS (${ca}, host name)`;
    case 'verify-ca':
      return `verified TLS (${ca}; host name unchecked: verify-ca)`;
    default:
      return 'TLS, unverified (PGSSLMODE=require)';
  }
}

/**
 * The `pg` driver's `ssl` option for libpq's sslmode and files; undefined: no TLS (the driver has
 * no "prefer"). `sslrootcert=system` (libpq 16+) means the system's CAs, which is Node's default.
 */
export function pgDriverTls(sslmode: string | undefined, files: PgSslFiles): ConnectionOptions | undefined {
  const mode = effectiveSslmode(sslmode, files);
  if (mode !== 'require' && mode !== 'verify-ca' && mode !== 'verify-full') return undefined;
  const verify = mode !== 'require';
  if (files.cert !== undefined && files.key === undefined) {
    throw failure(
      FailureType.Misconfigured,
      'PGSSLCERT is set without PGSSLKEY: set PGSSLKEY to the client key file',
    );
  }
  return {
    rejectUnauthorized: verify,
    ...(verify && files.rootCert !== undefined && files.rootCert !== 'system'
      ? { ca: readTlsFile('PGSSLROOTCERT', files.rootCert) }
      : {}),
    ...(files.cert !== undefined && { cert: readTlsFile('PGSSLCERT', files.cert) }),
    ...(files.key !== undefined && { key: readTlsFile('PGSSLKEY', files.key) }),
    ...(verify && files.crl !== undefined ? { crl: readTlsFile('PGSSLCRL', files.crl) } : {}),
    // verify-ca checks the chain only, as libpq does; verify-full also the host name (Node's default
    // check, against PGHOST: pg sets the SNI name for host names and checks IP addresses by `host`).
    ...(mode === 'verify-ca' && { checkServerIdentity: () => undefined }),
  };
}

/** libpq variables for the child tools: the same files the driver reads. */
export function pgSslEnv(files: PgSslFiles): Record<string, string> {
  const env: Record<string, string> = {};
  if (files.rootCert !== undefined) env.PGSSLROOTCERT = files.rootCert;
  if (files.cert !== undefined) env.PGSSLCERT = files.cert;
  if (files.key !== undefined) env.PGSSLKEY = files.key;
  if (files.crl !== undefined) env.PGSSLCRL = files.crl;
  return env;
}

const TRUST_ERRORS = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
]);

/**
 * A failed TLS check of the server said in the settings' words (Node's own, "self-signed
 * certificate in certificate chain", names neither the variable nor the fix); other errors as they are.
 */
export function explainTlsError(
  err: unknown,
  sslmode: string | undefined,
  files: PgSslFiles,
  where: string,
): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return err;
  const message = (err as Error).message;
  const mode = `PGSSLMODE=${sslmode ?? '(not set)'}`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return failure(
      FailureType.Misconfigured,
      `PostgreSQL ${where}: the server's certificate does not name this host (${message}; ${mode}): connect with PGHOST set to a name the certificate holds, or reissue the certificate`,
    );
  }
  if (!TRUST_ERRORS.has(code)) return err;
  const ca =
    files.rootCert === undefined
      ? 'PGSSLROOTCERT is not set, so only the system CAs are trusted: set PGSSLROOTCERT to the CA file that signed the server certificate'
      : `PGSSLROOTCERT=${files.rootCert} does not trust it: set PGSSLROOTCERT to the CA file that signed the server certificate`;
  return failure(
    FailureType.Misconfigured,
    `PostgreSQL ${where}: the server's certificate failed verification (${message}; ${mode}): ${ca}`,
  );
}
