import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient } from '../../src/client/connection';
import { createWorker } from '../../src/worker/create';
import { pingWorkflow } from '../../workflows/ping';
import { dbops } from '../drills/kit/dbops-cli';
import { errorOf } from '../helpers/errors';
import { nginxBinary, startGrpcTlsProxy, type GrpcTlsProxy } from '../helpers/nginx';
import { stackVars, testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { issueCert, makeCa } from '../helpers/tls';
import { startTestWorker, type TestWorker } from '../helpers/worker';

/**
 * Temporal behind a TLS-terminating gRPC proxy (Debian's nginx, `grpc_pass`) that demands a client
 * certificate: the worker and the CLI reach the dev stack's Temporal through it with
 * DBOPS_TEMPORAL_TLS_CA/_CERT/_KEY/_SERVER_NAME, and without the certificate they fail, saying which settings to check.
 */
const suffix = uniqueSuffix();
const work = mkdtempSync(path.join(os.tmpdir(), `dbops-temporal-tls-${suffix}-`));
const ca = makeCa(path.join(work, 'ca'), 'dbops-temporal-test-ca');
// The certificate names only a DNS name: the client must check it by DBOPS_TEMPORAL_TLS_SERVER_NAME.
const server = issueCert(ca, 'proxy', 'temporal.dbops.test', ['DNS:temporal.dbops.test'], 'serverAuth');
const client = issueCert(ca, 'worker', 'dbops-worker', [], 'clientAuth');
const taskQueue = `test-temporal-tls-${suffix}`;
let proxy: GrpcTlsProxy;
let tw: TestWorker;

function tlsEnv(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    DBOPS_TEMPORAL_ADDRESS: proxy.address,
    DBOPS_TEMPORAL_TLS_CA: ca.cert,
    DBOPS_TEMPORAL_TLS_CERT: client.cert,
    DBOPS_TEMPORAL_TLS_KEY: client.key,
    DBOPS_TEMPORAL_TLS_SERVER_NAME: 'temporal.dbops.test',
    DBOPS_TASK_QUEUE: taskQueue,
    ...extra,
  };
}

/** The CLI's own run settings: the test run's namespace and backup folder (doctor probes it). */
function runEnv(): Record<string, string> {
  return { DBOPS_TEMPORAL_NAMESPACE: testRun().namespace, DBOPS_BACKUP_DIR: testRun().backupDir };
}

beforeAll(async () => {
  const vars = stackVars();
  proxy = await startGrpcTlsProxy({
    nginx: nginxBinary(vars.DBOPS_STACK_HOME!),
    upstream: vars.DBOPS_TEMPORAL_ADDRESS!,
    cert: server.cert,
    key: server.key,
    clientCa: ca.cert,
  });
  tw = await startTestWorker(testConfig(tlsEnv()));
}, 60_000);

afterAll(async () => {
  await tw?.stop();
  await proxy?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('Temporal through an mTLS gRPC proxy', () => {
  it('the worker polls and runs a workflow through the proxy', async () => {
    const result = await tw.client.workflow.execute(pingWorkflow, {
      taskQueue,
      workflowId: `test-ping-tls-${suffix}`,
      args: ['over mTLS'],
    });
    expect(result.echo).toBe('over mTLS');
    // nginx passed the worker's polls on: they did not go around it.
    const line =
      /POST \/temporal\.api\.workflowservice\.v1\.WorkflowService\/PollWorkflowTaskQueue HTTP\/2\.0" 200/;
    expect(await proxy.accessLogWith(line)).toMatch(line);
  });

  it('the CLI connects with mTLS: doctor sees the server and the worker, and says how the connection is protected', async () => {
    const run = await dbops({ ...tlsEnv(), ...runEnv() }, 'doctor', '--json');
    const checks = (JSON.parse(run.stdout) as { checks: { name: string; status: string; detail: string }[] })
      .checks;
    const temporal = checks.find((c) => c.name === 'temporal')!;
    expect(temporal).toMatchObject({ status: 'ok' });
    expect(temporal.detail).toContain(`${proxy.address}: server `);
    expect(temporal.detail).toContain('connection: verified TLS (DBOPS_TEMPORAL_TLS_CA), client certificate');
    expect(checks.find((c) => c.name === 'worker')).toMatchObject({ status: 'ok' });
  }, 60_000);

  it('without the client certificate, the CLI and the worker fail naming the TLS settings', async () => {
    const noCert = tlsEnv({ DBOPS_TEMPORAL_TLS_CERT: undefined, DBOPS_TEMPORAL_TLS_KEY: undefined });
    const err = await errorOf(connectClient(testConfig(noCert)));
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(
      new RegExp(
        `^cannot connect to Temporal at ${proxy.address} \\(TLS CA ${ca.cert}, client certificate none, server name temporal\\.dbops\\.test\\): .+; check .*DBOPS_TEMPORAL_TLS_CERT/DBOPS_TEMPORAL_TLS_KEY \\(when it requires a client certificate\\)`,
      ),
    );
    const workerErr = await errorOf(createWorker(testConfig(noCert)));
    expect(workerErr.message).toMatch(
      /^cannot connect to Temporal at .*client certificate none.*DBOPS_TEMPORAL_TLS_CERT/,
    );

    const cli = await dbops({ ...noCert, ...runEnv() }, 'doctor', '--json');
    const temporal = (
      JSON.parse(cli.stdout) as { checks: { name: string; status: string; detail: string }[] }
    ).checks.find((c) => c.name === 'temporal')!;
    expect(temporal.status).toBe('fail');
    expect(temporal.detail).toMatch(/cannot connect to Temporal at .*client certificate none/);
  }, 60_000);

  it('a CA that did not sign the proxy certificate is refused', async () => {
    const other = makeCa(path.join(work, 'other'), 'dbops-other-ca');
    const err = await errorOf(connectClient(testConfig(tlsEnv({ DBOPS_TEMPORAL_TLS_CA: other.cert }))));
    expect(err.message).toMatch(
      new RegExp(`^cannot connect to Temporal at ${proxy.address} \\(TLS CA ${other.cert}`),
    );
  });
});
