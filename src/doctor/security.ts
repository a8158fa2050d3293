import type { Config } from '../config';

/**
 * How the connections without a driver-side check of their own are protected, in the words
 * `dbops doctor` uses for all of them: plain, TLS (unverified) or verified TLS.
 */
export function s3Security(storage: Config['storage']): string | undefined {
  if (storage.kind !== 's3') return undefined;
  // The AWS SDK checks the certificate of an https endpoint against the system CAs.
  if (storage.endpoint === undefined || /^https:/i.test(storage.endpoint)) return 'verified TLS (system CAs)';
  return 'plain (DBOPS_S3_ALLOW_HTTP=true)';
}

/** Milvus: the SDK always verifies a TLS server (against DBOPS_MILVUS_TLS_CA or the system CAs). */
export function milvusSecurity(milvus: Config['milvus']): string {
  const { tls } = milvus;
  if (!tls.on) return milvus.token !== undefined ? 'plain (the token crosses the network in clear)' : 'plain';
  return [
    `verified TLS (${tls.ca !== undefined ? 'DBOPS_MILVUS_TLS_CA' : 'system CAs'})`,
    ...(tls.cert !== undefined ? ['client certificate'] : []),
  ].join(', ');
}
