import type { TLSConfig } from '@temporalio/client';
import { readTlsFile } from './tls-files';

/** DBOPS_TEMPORAL_TLS_*: PEM file paths (Kubernetes Secret mounts), read when a connection is made. */
export interface TemporalTlsFiles {
  /** The CA that signed the server's certificate; unset: the system CAs. */
  readonly ca: string | undefined;
  /** The mTLS client certificate and its key (both or neither). */
  readonly cert: string | undefined;
  readonly key: string | undefined;
  /** The name checked in the server certificate (and sent as SNI) instead of the address's host. */
  readonly serverName: string | undefined;
}

export interface TemporalSettings {
  readonly address: string;
  readonly namespace: string;
  /** TLS on: DBOPS_TEMPORAL_TLS=true, any DBOPS_TEMPORAL_TLS_* file or name, or an API key (never sent in clear). */
  readonly tls: boolean;
  readonly tlsFiles: TemporalTlsFiles;
  readonly apiKey: string | undefined;
}

/**
 * The one definition of how dbops reaches Temporal, shared by the worker's NativeConnection and every
 * client Connection (CLI, doctor, the lock-holder activity): TLS with the configured CA, client pair
 * and server name, and the API key. The two SDK connection types take the same fields.
 */
export function temporalConnectionOptions(t: TemporalSettings): {
  address: string;
  tls: TLSConfig | undefined;
  apiKey: string | undefined;
} {
  if (!t.tls) return { address: t.address, tls: undefined, apiKey: undefined };
  const f = t.tlsFiles;
  const tls: TLSConfig = {
    ...(f.serverName !== undefined && { serverNameOverride: f.serverName }),
    ...(f.ca !== undefined && { serverRootCACertificate: readTlsFile('DBOPS_TEMPORAL_TLS_CA', f.ca) }),
    ...(f.cert !== undefined &&
      f.key !== undefined && {
        clientCertPair: {
          crt: readTlsFile('DBOPS_TEMPORAL_TLS_CERT', f.cert),
          key: readTlsFile('DBOPS_TEMPORAL_TLS_KEY', f.key),
        },
      }),
  };
  return { address: t.address, tls, apiKey: t.apiKey };
}

/** How the connection is protected, for `dbops doctor` (Temporal's client always verifies a TLS server). */
export function temporalSecurity(t: TemporalSettings): string {
  if (!t.tls) return 'plain';
  return [
    `verified TLS (${t.tlsFiles.ca !== undefined ? 'DBOPS_TEMPORAL_TLS_CA' : 'system CAs'})`,
    ...(t.tlsFiles.cert !== undefined ? ['client certificate'] : []),
    ...(t.apiKey !== undefined ? ['API key'] : []),
  ].join(', ');
}

/**
 * A failed connection said with the settings to check: the SDK's own words for a refused client
 * certificate or an untrusted server ("Received HTTP status code 400", "UnknownIssuer") name
 * neither. No `cause`: rootMessage (doctor, the CLI) would print the SDK's words alone again.
 */
export function explainTemporalConnectError(err: unknown, t: TemporalSettings): Error {
  const message = err instanceof Error ? err.message : String(err);
  const settings = t.tls
    ? `TLS ${[
        `CA ${t.tlsFiles.ca ?? 'system'}`,
        `client certificate ${t.tlsFiles.cert ?? 'none'}`,
        ...(t.tlsFiles.serverName !== undefined ? [`server name ${t.tlsFiles.serverName}`] : []),
      ].join(', ')}`
    : 'plain (no TLS)';
  return new Error(
    `cannot connect to Temporal at ${t.address} (${settings}): ${message}; check DBOPS_TEMPORAL_ADDRESS and, for a TLS server, DBOPS_TEMPORAL_TLS_CA (the CA that signed its certificate), DBOPS_TEMPORAL_TLS_CERT/DBOPS_TEMPORAL_TLS_KEY (when it requires a client certificate) and DBOPS_TEMPORAL_TLS_SERVER_NAME`,
  );
}
