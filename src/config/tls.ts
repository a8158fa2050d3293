/** The connections' security settings (PGSSL*, DBOPS_TEMPORAL_TLS_*, DBOPS_S3_ALLOW_HTTP), checked once. */
import type { MilvusTls } from '../../activities/milvus/client';
import type { PgSslFiles } from '../../activities/postgres/tls';
import type { TemporalTlsFiles } from '../../activities/temporal-connection';
import type { Parsed } from './variables';

export function pgSslFiles(v: Parsed, problems: string[]): PgSslFiles {
  if ((v.PGSSLCERT === undefined) !== (v.PGSSLKEY === undefined)) {
    problems.push(
      `${v.PGSSLCERT === undefined ? 'PGSSLKEY' : 'PGSSLCERT'} is set without ${v.PGSSLCERT === undefined ? 'PGSSLCERT' : 'PGSSLKEY'}: a client certificate needs both files (or neither)`,
    );
  }
  return { rootCert: v.PGSSLROOTCERT, cert: v.PGSSLCERT, key: v.PGSSLKEY, crl: v.PGSSLCRL };
}

export function temporalTlsFiles(v: Parsed, problems: string[]): TemporalTlsFiles {
  if ((v.DBOPS_TEMPORAL_TLS_CERT === undefined) !== (v.DBOPS_TEMPORAL_TLS_KEY === undefined)) {
    problems.push(
      'DBOPS_TEMPORAL_TLS_CERT and DBOPS_TEMPORAL_TLS_KEY go together: set both (the mTLS client certificate and its key) or neither',
    );
  }
  return {
    ca: v.DBOPS_TEMPORAL_TLS_CA,
    cert: v.DBOPS_TEMPORAL_TLS_CERT,
    key: v.DBOPS_TEMPORAL_TLS_KEY,
    serverName: v.DBOPS_TEMPORAL_TLS_SERVER_NAME,
  };
}

/** TLS is on when asked for, or implied by any TLS file or name, or by an API key (never sent in clear). */
export function temporalTlsOn(v: Parsed, files: TemporalTlsFiles): boolean {
  return v.DBOPS_TEMPORAL_TLS || v.DBOPS_TEMPORAL_API_KEY !== undefined || Object.values(files).some(Boolean);
}

/** Milvus TLS: on when asked for or implied by a file or name; the SDK sends a client pair only with the CA. */
export function milvusTls(v: Parsed, problems: string[]): MilvusTls {
  const cert = v.DBOPS_MILVUS_TLS_CERT;
  const key = v.DBOPS_MILVUS_TLS_KEY;
  if ((cert === undefined) !== (key === undefined)) {
    problems.push(
      'DBOPS_MILVUS_TLS_CERT and DBOPS_MILVUS_TLS_KEY go together: set both (the mTLS client certificate and its key) or neither',
    );
  } else if (cert !== undefined && v.DBOPS_MILVUS_TLS_CA === undefined) {
    problems.push(
      'DBOPS_MILVUS_TLS_CERT needs DBOPS_MILVUS_TLS_CA: the Milvus SDK sends a client certificate only together with the CA file (set it to the CA of the server certificate)',
    );
  }
  const files = { ca: v.DBOPS_MILVUS_TLS_CA, cert, key, serverName: v.DBOPS_MILVUS_TLS_SERVER_NAME };
  return { on: v.DBOPS_MILVUS_TLS || Object.values(files).some(Boolean), ...files };
}

/** An http:// S3 endpoint sends every backup (and the request signatures) in clear: refused unless allowed. */
export function s3EndpointProblems(v: Parsed): string[] {
  if (v.DBOPS_S3_ENDPOINT === undefined || !/^http:/i.test(v.DBOPS_S3_ENDPOINT) || v.DBOPS_S3_ALLOW_HTTP) {
    return [];
  }
  return [
    `DBOPS_S3_ENDPOINT=${v.DBOPS_S3_ENDPOINT} is plain http: backups would cross the network unencrypted; use its https:// address, or set DBOPS_S3_ALLOW_HTTP=true for a store on a trusted local link (the dev stack sets it)`,
  ];
}

/** Everything above at once, for ./index.ts: the problems are the config's own (ConfigError). */
export function connectionSecurity(v: Parsed) {
  const problems: string[] = [];
  const pgSsl = pgSslFiles(v, problems);
  const tlsFiles = temporalTlsFiles(v, problems);
  const milvus = milvusTls(v, problems);
  problems.push(...s3EndpointProblems(v));
  return {
    problems,
    pgSsl,
    milvusTls: milvus,
    temporal: {
      address: v.DBOPS_TEMPORAL_ADDRESS,
      namespace: v.DBOPS_TEMPORAL_NAMESPACE,
      taskQueue: v.DBOPS_TASK_QUEUE,
      uiUrl: v.DBOPS_TEMPORAL_UI_URL.replace(/\/+$/, ''),
      tls: temporalTlsOn(v, tlsFiles),
      tlsFiles,
      apiKey: v.DBOPS_TEMPORAL_API_KEY,
    },
  };
}
