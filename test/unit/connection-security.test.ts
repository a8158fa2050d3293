import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pgChildEnv, pgClientConfig } from '../../activities/postgres/connection';
import { temporalConnectionOptions } from '../../activities/temporal-connection';
import { describeConfig, loadConfig } from '../../src/config';
import { configProblems } from '../helpers/errors';

const base = { DBOPS_STACK_HOME: '/nonexistent-stack-home' };
const dir = mkdtempSync(path.join(os.tmpdir(), 'dbops-connsec-'));
const file = (name: string, text: string) => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};
const ca = file('ca.pem', 'CA PEM');
const crt = file('client.pem', 'CLIENT PEM');
const key = file('client.key', 'KEY PEM');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('PGSSL*: one set of files for the pg driver and the child tools', () => {
  const env = {
    ...base,
    PGSSLMODE: 'verify-full',
    PGSSLROOTCERT: ca,
    PGSSLCERT: crt,
    PGSSLKEY: key,
    PGSSLCRL: ca,
  };

  it('the child tools get every libpq TLS variable', () => {
    const config = loadConfig(env);
    expect(pgChildEnv(config.pg)).toMatchObject({
      PGSSLMODE: 'verify-full',
      PGSSLROOTCERT: ca,
      PGSSLCERT: crt,
      PGSSLKEY: key,
      PGSSLCRL: ca,
    });
  });

  it('the driver reads the same files: verify-full checks the chain and the host name', () => {
    const ssl = pgClientConfig(loadConfig(env).pg).ssl as Record<string, unknown>;
    expect(ssl).toMatchObject({ rejectUnauthorized: true });
    expect(String(ssl.ca)).toBe('CA PEM');
    expect(String(ssl.cert)).toBe('CLIENT PEM');
    expect(String(ssl.key)).toBe('KEY PEM');
    expect(ssl.checkServerIdentity).toBeUndefined();
  });

  it('require with a root certificate checks the CA, as libpq does (verify-ca); require alone checks nothing', () => {
    const withCa = pgClientConfig(loadConfig({ ...base, PGSSLMODE: 'require', PGSSLROOTCERT: ca }).pg)
      .ssl as Record<string, unknown>;
    expect(withCa.rejectUnauthorized).toBe(true);
    expect(typeof withCa.checkServerIdentity).toBe('function');
    expect(pgClientConfig(loadConfig({ ...base, PGSSLMODE: 'require' }).pg).ssl).toEqual({
      rejectUnauthorized: false,
    });
    expect(
      pgClientConfig(loadConfig({ ...base, PGSSLMODE: 'disable', PGSSLROOTCERT: ca }).pg).ssl,
    ).toBeUndefined();
  });

  it('the verification server shares the files; a missing file fails naming its variable', () => {
    const config = loadConfig({ ...env, DBOPS_VERIFY_PGHOST: 'verify.internal' });
    expect(pgChildEnv(config.verifyPg!)).toMatchObject({ PGHOST: 'verify.internal', PGSSLROOTCERT: ca });
    const missing = loadConfig({
      ...base,
      PGSSLMODE: 'verify-ca',
      PGSSLROOTCERT: path.join(dir, 'nope.pem'),
    });
    expect(() => pgClientConfig(missing.pg)).toThrow(/^PGSSLROOTCERT=.*nope\.pem: cannot read it \(ENOENT\)/);
  });

  it('a client certificate needs its key', () => {
    expect(configProblems({ ...base, PGSSLCERT: crt })).toEqual([
      'PGSSLCERT is set without PGSSLKEY: a client certificate needs both files (or neither)',
    ]);
  });

  it('dbops config names them', () => {
    const rows = Object.fromEntries(describeConfig(loadConfig(env), {}).map((r) => [r.name, r.value]));
    expect(rows).toMatchObject({ PGSSLROOTCERT: ca, PGSSLCERT: crt, PGSSLKEY: key, PGSSLCRL: ca });
  });
});

describe('DBOPS_TEMPORAL_TLS_*: one definition for the worker and every client', () => {
  it('the files and server name make the TLS options; any of them turns TLS on', () => {
    const config = loadConfig({
      ...base,
      DBOPS_TEMPORAL_TLS_CA: ca,
      DBOPS_TEMPORAL_TLS_CERT: crt,
      DBOPS_TEMPORAL_TLS_KEY: key,
      DBOPS_TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
      DBOPS_TEMPORAL_API_KEY: 'k-123',
    });
    const o = temporalConnectionOptions(config.temporal);
    expect(o.apiKey).toBe('k-123');
    expect(o.tls?.serverNameOverride).toBe('temporal.internal');
    expect(Buffer.from(o.tls!.serverRootCACertificate!).toString()).toBe('CA PEM');
    expect(Buffer.from(o.tls!.clientCertPair!.crt).toString()).toBe('CLIENT PEM');
    expect(Buffer.from(o.tls!.clientCertPair!.key).toString()).toBe('KEY PEM');
    expect(
      temporalConnectionOptions(loadConfig({ ...base, DBOPS_TEMPORAL_TLS_CA: ca }).temporal).tls,
    ).toBeDefined();
    expect(temporalConnectionOptions(loadConfig(base).temporal)).toEqual({
      address: '127.0.0.1:17233',
      tls: undefined,
      apiKey: undefined,
    });
    const rows = Object.fromEntries(describeConfig(config, {}).map((r) => [r.name, r.value]));
    expect(rows).toMatchObject({
      DBOPS_TEMPORAL_TLS: 'true',
      DBOPS_TEMPORAL_TLS_CA: ca,
      DBOPS_TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
      DBOPS_TEMPORAL_API_KEY: '<redacted>',
    });
  });

  it('a certificate without its key is refused; an unreadable file names its variable', () => {
    expect(configProblems({ ...base, DBOPS_TEMPORAL_TLS_KEY: key })).toEqual([
      'DBOPS_TEMPORAL_TLS_CERT and DBOPS_TEMPORAL_TLS_KEY go together: set both (the mTLS client certificate and its key) or neither',
    ]);
    const config = loadConfig({ ...base, DBOPS_TEMPORAL_TLS_CA: path.join(dir, 'gone.pem') });
    expect(() => temporalConnectionOptions(config.temporal)).toThrow(
      /^DBOPS_TEMPORAL_TLS_CA=.*gone\.pem: cannot read it \(ENOENT\): mount the PEM file there or fix DBOPS_TEMPORAL_TLS_CA$/,
    );
  });
});

describe('DBOPS_S3_ALLOW_HTTP', () => {
  const s3 = { ...base, DBOPS_S3_BUCKET: 'backups-1' };

  it('an http:// endpoint is refused unless allowed, naming the fix', () => {
    expect(configProblems({ ...s3, DBOPS_S3_ENDPOINT: 'http://minio.internal:9100' })).toEqual([
      'DBOPS_S3_ENDPOINT=http://minio.internal:9100 is plain http: backups would cross the network unencrypted; use its https:// address, or set DBOPS_S3_ALLOW_HTTP=true for a store on a trusted local link (the dev stack sets it)',
    ]);
    const allowed = loadConfig({
      ...s3,
      DBOPS_S3_ENDPOINT: 'http://minio.internal:9100',
      DBOPS_S3_ALLOW_HTTP: 'true',
    });
    expect(allowed.storage).toMatchObject({ kind: 's3', endpoint: 'http://minio.internal:9100' });
    expect(describeConfig(allowed, {}).find((r) => r.name === 'DBOPS_S3_ALLOW_HTTP')?.value).toBe('true');
  });

  it('https and AWS itself need nothing', () => {
    expect(loadConfig({ ...s3, DBOPS_S3_ENDPOINT: 'https://minio.internal:9100' }).storage.kind).toBe('s3');
    expect(loadConfig(s3).storage.kind).toBe('s3');
  });
});

describe('DBOPS_MILVUS_TLS_*', () => {
  it('any file or name turns TLS on; a client pair needs its CA; dbops config names them', () => {
    const config = loadConfig({
      ...base,
      DBOPS_MILVUS_TLS_CA: ca,
      DBOPS_MILVUS_TLS_CERT: crt,
      DBOPS_MILVUS_TLS_KEY: key,
    });
    expect(config.milvus.tls).toEqual({ on: true, ca, cert: crt, key, serverName: undefined });
    expect(loadConfig(base).milvus.tls.on).toBe(false);
    expect(loadConfig({ ...base, DBOPS_MILVUS_TLS: 'true' }).milvus.tls.on).toBe(true);
    expect(configProblems({ ...base, DBOPS_MILVUS_TLS_CERT: crt, DBOPS_MILVUS_TLS_KEY: key })).toEqual([
      'DBOPS_MILVUS_TLS_CERT needs DBOPS_MILVUS_TLS_CA: the Milvus SDK sends a client certificate only together with the CA file (set it to the CA of the server certificate)',
    ]);
    const rows = Object.fromEntries(describeConfig(config, {}).map((r) => [r.name, r.value]));
    expect(rows).toMatchObject({
      DBOPS_MILVUS_TLS: 'true',
      DBOPS_MILVUS_TLS_CA: ca,
      DBOPS_MILVUS_TLS_KEY: key,
    });
  });
});
