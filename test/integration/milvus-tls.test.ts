import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withMilvus } from '../../activities/milvus/client';
import { rootMessage } from '../../common/failures';
import { runDoctor } from '../../src/doctor/checks';
import { errorOf } from '../helpers/errors';
import { nginxBinary, startGrpcTlsProxy, type GrpcTlsProxy } from '../helpers/nginx';
import { stackVars, testConfig, uniqueSuffix } from '../helpers/stack';
import { issueCert, makeCa } from '../helpers/tls';

/**
 * Milvus behind a TLS-terminating gRPC proxy (Debian's nginx, `grpc_pass`) that demands a client
 * certificate: dbops reaches the dev stack's Milvus through it with DBOPS_MILVUS_TLS_*.
 */
const suffix = uniqueSuffix();
const work = mkdtempSync(path.join(os.tmpdir(), `dbops-milvus-tls-${suffix}-`));
const ca = makeCa(path.join(work, 'ca'), 'dbops-milvus-test-ca');
const server = issueCert(ca, 'proxy', 'milvus.dbops.test', ['DNS:milvus.dbops.test'], 'serverAuth');
const client = issueCert(ca, 'client', 'dbops', [], 'clientAuth');
let proxy: GrpcTlsProxy;

const milvusConfig = (extra: Record<string, string | undefined> = {}) =>
  testConfig({
    DBOPS_MILVUS_ADDRESS: proxy.address,
    DBOPS_MILVUS_TLS_CA: ca.cert,
    DBOPS_MILVUS_TLS_CERT: client.cert,
    DBOPS_MILVUS_TLS_KEY: client.key,
    DBOPS_MILVUS_TLS_SERVER_NAME: 'milvus.dbops.test',
    ...extra,
  });

beforeAll(async () => {
  const vars = stackVars();
  proxy = await startGrpcTlsProxy({
    nginx: nginxBinary(vars.DBOPS_STACK_HOME!),
    upstream: vars.DBOPS_MILVUS_ADDRESS!,
    cert: server.cert,
    key: server.key,
    clientCa: ca.cert,
  });
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('Milvus through an mTLS gRPC proxy', () => {
  it('connects with the CA, the client pair and the server name; doctor says so', async () => {
    const config = milvusConfig();
    const version = await withMilvus({ ...config.milvus, timeoutMs: 10_000 }, (c) => c.getVersion());
    expect(version.version).toMatch(/^v?2\.3\.5/);
    const line = /POST \/milvus\.proto\.milvus\.MilvusService\/GetVersion HTTP\/2\.0" 200/;
    expect(await proxy.accessLogWith(line)).toMatch(line);
    const row = (await runDoctor(config)).find((r) => r.name === 'milvus')!;
    expect(row.status).toBe('ok');
    expect(row.detail).toMatch(/; connection: verified TLS \(DBOPS_MILVUS_TLS_CA\), client certificate$/);
  }, 60_000);

  it('without the client certificate, or with another CA, it fails naming the TLS settings', async () => {
    const noCert = milvusConfig({ DBOPS_MILVUS_TLS_CERT: undefined, DBOPS_MILVUS_TLS_KEY: undefined });
    const err = await errorOf(withMilvus({ ...noCert.milvus, timeoutMs: 5000 }, (c) => c.getVersion()));
    expect(rootMessage(err)).toMatch(
      new RegExp(
        `^Milvus at ${proxy.address} is unreachable \\(TLS CA ${ca.cert}, client certificate none, server name milvus\\.dbops\\.test; check DBOPS_MILVUS_TLS_CA, DBOPS_MILVUS_TLS_CERT/DBOPS_MILVUS_TLS_KEY`,
      ),
    );
    const other = makeCa(path.join(work, 'other'), 'dbops-other-ca');
    const wrongCa = milvusConfig({ DBOPS_MILVUS_TLS_CA: other.cert });
    const err2 = await errorOf(withMilvus({ ...wrongCa.milvus, timeoutMs: 5000 }, (c) => c.getVersion()));
    expect(rootMessage(err2)).toMatch(
      new RegExp(`^Milvus at ${proxy.address} is unreachable \\(TLS CA ${other.cert},`),
    );
  }, 60_000);
});
