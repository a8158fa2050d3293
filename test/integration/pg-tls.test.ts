import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgChildEnv, withPg } from '../../activities/postgres/connection';
import { failureTypeOf, rootMessage } from '../../common/failures';
import { restoreWorkflowId, verifyWorkflowId } from '../../common/ids';
import type { RestoreResult, RestoreStatus, VerifyWorkflowResult } from '../../common/restore';
import { restoreApprovalUpdate, restoreStatusQuery } from '../../workflows/restore-messages';
import { runDoctor } from '../../src/doctor/checks';
import { stackVars, testConfig, uniqueSuffix } from '../helpers/stack';
import { issueCert, makeCa, sslCapableBinDir, startTlsPostgres, type TlsPostgres } from '../helpers/tls';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import { fingerprint, populate, sql, takeBackup, waitFor } from './restore-fixtures';

/**
 * PostgreSQL over TLS with libpq's own settings: a server of the test's own (ssl=on, TLS-only
 * pg_hba, a certificate from a CA made here; built with OpenSSL, which the stack's is not) and PGSSLMODE=verify-full with PGSSLROOTCERT. The
 * backup's pg_dump and the restore's pg_restore run with extendEnv: false, so they pass only if
 * PGSSLROOTCERT reaches them (libpq would otherwise look for ~/.postgresql/root.crt and refuse).
 */
const suffix = uniqueSuffix();
const db = `t_pgtls_${suffix}`;
const work = mkdtempSync(path.join(os.tmpdir(), `dbops-pgtls-${suffix}-`));
const ca = makeCa(path.join(work, 'ca'), 'dbops-test-ca');
const wrongCa = makeCa(path.join(work, 'wrong'), 'dbops-wrong-ca');
const serverCert = issueCert(ca, 'server', '127.0.0.1', ['IP:127.0.0.1', 'DNS:localhost'], 'serverAuth');
const binDir = sslCapableBinDir(stackVars().DBOPS_PG_BIN_DIR);
const execFileAsync = promisify(execFile);

let server: TlsPostgres;
let tw: TestWorker;
let config: ReturnType<typeof testConfig>;

/** The test server with verify-full against `rootCert`, plus `extra`. */
function tlsConfig(rootCert: string, extra: Record<string, string> = {}) {
  return testConfig({
    PGHOST: '127.0.0.1',
    PGPORT: String(server.port),
    PGUSER: 'postgres',
    PGDATABASE: 'postgres',
    PGSSLMODE: 'verify-full',
    PGSSLROOTCERT: rootCert,
    DBOPS_TASK_QUEUE: `test-pgtls-${suffix}`,
    DBOPS_BACKUP_DIR: path.join(work, 'backups'),
    DBOPS_DATABASES: db,
    DBOPS_PG_BIN_DIR: binDir,
    ...extra,
  });
}

beforeAll(async () => {
  server = await startTlsPostgres(binDir, serverCert);
  config = tlsConfig(ca.cert);
  await populate(config, db, 3000);
  tw = await startTestWorker(config);
}, 120_000);

afterAll(async () => {
  await tw?.stop();
  server?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('PostgreSQL with PGSSLMODE=verify-full and a CA of its own', () => {
  it('the connection is TLS, and plain connections are refused by the server', async () => {
    const [row] = await sql<{ ssl: boolean }>(
      config,
      undefined,
      'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
    );
    expect(row).toEqual({ ssl: true });
    const doctor = (await runDoctor(config)).find((r) => r.name === 'postgresql')!;
    expect(doctor.detail).toContain(
      `127.0.0.1:${server.port}/postgres (connection: verified TLS (PGSSLROOTCERT, host name)): PostgreSQL `,
    );
    const plain = tlsConfig(ca.cert, { PGSSLMODE: 'disable' });
    await expect(withPg(plain.pg, 'postgres', (c) => c.query('SELECT 1'))).rejects.toThrow(/no encryption/);
  });

  it('backup, verification and restore pass: the driver and every child tool check the certificate', async () => {
    const original = await fingerprint(config, db);
    const backup = await takeBackup(tw.client, config, db);
    expect(backup.backupId).toBeTruthy();

    const verified: VerifyWorkflowResult = await tw.client.workflow.execute('verifyBackupWorkflow', {
      taskQueue: config.temporal.taskQueue,
      workflowId: verifyWorkflowId(backup.backupId),
      args: [{ backupId: backup.backupId, maximumAttempts: 1 }],
    });
    expect(verified.status).toBe('passed');

    await sql(config, db, "DELETE FROM users WHERE id <= 100; UPDATE events SET kind = 'changed'");
    expect(await fingerprint(config, db)).not.toEqual(original);
    const handle = await tw.client.workflow.start('restoreWorkflow', {
      taskQueue: config.temporal.taskQueue,
      workflowId: restoreWorkflowId(db, new Date()),
      args: [
        {
          backup: backup.backupId,
          requestedBy: 'alice',
          approvalTimeoutMs: 10 * 60_000,
          fourEyes: true,
          keepDays: 7,
          jobs: 2,
          maximumAttempts: 1,
        },
      ],
    });
    const status = await waitFor('awaiting-approval', async () => {
      const s: RestoreStatus = await handle.query(restoreStatusQuery);
      return s.phase === 'awaiting-approval' ? s : undefined;
    });
    await handle.executeUpdate(restoreApprovalUpdate, {
      args: [{ decision: 'approve', by: 'bob', planHash: status.planHash! }],
    });
    const result: RestoreResult = await handle.result();
    expect(result.outcome).toBe('restored');
    expect(await fingerprint(config, db)).toEqual(original);
  }, 180_000);

  it('a wrong CA fails with an error naming PGSSLROOTCERT, in the driver and in the tools', async () => {
    const wrong = tlsConfig(wrongCa.cert);
    const err = await withPg(wrong.pg, 'postgres', (c) => c.query('SELECT 1')).catch((e: unknown) => e);
    expect(failureTypeOf(err)).toBe('Misconfigured');
    expect(rootMessage(err)).toMatch(
      new RegExp(
        `PostgreSQL 127\\.0\\.0\\.1:${server.port}: the server's certificate failed verification \\(.*PGSSLMODE=verify-full\\): PGSSLROOTCERT=${wrongCa.cert} does not trust it`,
      ),
    );
    // psql gets exactly what pg_dump and pg_restore get: pgChildEnv, nothing inherited.
    const psql = (env: Record<string, string>) =>
      execFileAsync(
        path.join(binDir, 'psql'),
        ['-XAtc', 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'],
        {
          env,
        },
      );
    await expect(psql(pgChildEnv(config.pg))).resolves.toMatchObject({ stdout: 't\n' });
    await expect(psql(pgChildEnv(wrong.pg))).rejects.toThrow(/certificate verify failed/);
  });
});
