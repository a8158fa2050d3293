/**
 * Encrypted Temporal payloads on the real stack: a backup and a restore dry run through a test
 * worker with DBOPS_PAYLOAD_KEYS set leave no database name or row count in clear in the raw
 * history (`temporal workflow show --output json`), while the dbops client, `dbops restore status`,
 * the codec server and the temporal CLI pointed at the codec server read them.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { defaultPayloadConverter } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackupWorkflowResult } from '../../common/backup';
import type { RestoreResult, RestoreWorkflowInput } from '../../common/restore';
import { EncryptionCodec } from '../../src/codec/encryption';
import { parsePayloadKeys } from '../../src/codec/keys';
import { startConfiguredCodecServer } from '../../src/codec/run';
import type { RunningCodecServer } from '../../src/codec/server';
import { dbops } from '../drills/kit/dbops-cli';
import { stackVars, testConfig, uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import { dropDatabasesLike, populate } from './restore-fixtures';

const suffix = uniqueSuffix();
const db = `t_payenc_${suffix}`;
const dir = mkdtempSync(path.join(os.tmpdir(), `t_payenc_${suffix}`));
const keyFile = path.join(dir, 'payload-keys');
const key = () => randomBytes(32).toString('base64');
writeFileSync(keyFile, `# k2 encrypts, k1 still decrypts\nk2:${key()}\nk1:${key()}\n`, { mode: 0o600 });
const env = {
  DBOPS_TASK_QUEUE: `test-payenc-${suffix}`,
  DBOPS_BACKUP_DIR: path.join(dir, 'backups'),
  DBOPS_DATABASES: db,
  DBOPS_PAYLOAD_KEYS: keyFile,
};
const config = testConfig(env);
const backupId = `payenc-backup-${suffix}`;
const restoreId = `payenc-restore-${suffix}`;
// A backup of a database that does not exist: its failure text names the database.
const missingDb = `t_payenc_missing_${suffix}`;
const failedId = `payenc-failed-${suffix}`;

let tw: TestWorker;
let codecServer: RunningCodecServer;
let backup: BackupWorkflowResult;
let restore: RestoreResult;
let failure: Error;

interface JsonPayload {
  metadata: Record<string, string>;
  data?: string;
}

/** `temporal <args>` against the run's namespace; its stdout. */
async function temporalCli(...args: string[]): Promise<string> {
  const cli = stackVars().DBOPS_TEMPORAL_CLI!;
  const all = [...args, '--address', config.temporal.address, '--namespace', config.temporal.namespace];
  const { stdout } = await promisify(execFile)(cli, all, { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

const rawHistory = (workflowId: string, ...extra: string[]) =>
  temporalCli('workflow', 'show', '--workflow-id', workflowId, '--output', 'json', ...extra);

/**
 * The history's JSON without its search attributes: the server indexes those to list and find runs,
 * so no codec ever sees them (Temporal's rule); the backup workflow's DbopsBackupId is checked apart.
 */
function withoutSearchAttributes(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSearchAttributes);
  if (!value || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([k]) => k !== 'searchAttributes')
      .map(([k, v]) => [k, withoutSearchAttributes(v)]),
  );
}

/** Every Temporal payload in a history's JSON (objects with metadata.encoding), wherever it sits. */
function payloadsIn(value: unknown, out: JsonPayload[] = []): JsonPayload[] {
  if (Array.isArray(value)) for (const v of value) payloadsIn(v, out);
  else if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (isPayload(o)) out.push(o as unknown as JsonPayload);
    else for (const v of Object.values(o)) payloadsIn(v, out);
  }
  return out;
}

const b64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString('latin1');
const isPayload = (o: Record<string, unknown>) =>
  typeof (o.metadata as Record<string, unknown> | undefined)?.encoding === 'string';

/** The JSON as a reader of the server's database sees it: each payload as its data's bytes. */
function clearText(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) && isPayload(v as Record<string, unknown>)
      ? `${b64((v as JsonPayload).metadata.encoding)}:${b64((v as JsonPayload).data)}`
      : v,
  );
}

/** Every search attribute the history sets, by name, as readable text. */
function searchAttributesIn(value: unknown, out: Record<string, string> = {}): Record<string, string> {
  if (Array.isArray(value)) for (const v of value) searchAttributesIn(v, out);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'searchAttributes') {
        const fields = (v as { indexedFields?: Record<string, JsonPayload> }).indexedFields ?? {};
        for (const [name, p] of Object.entries(fields)) out[name] = b64(p.data);
      } else searchAttributesIn(v, out);
    }
  }
  return out;
}

async function post(route: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${codecServer.url}${route}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  await populate(config, db, 1_237);
  tw = await startTestWorker(config);
  backup = await tw.client.workflow.execute('backupWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId: backupId,
    args: [{ database: db, trigger: 'manual', prune: false, verify: false }],
  });
  const input: RestoreWorkflowInput = {
    backup: backup.backupId,
    requestedBy: 'alice',
    approvalTimeoutMs: 10 * 60_000,
    fourEyes: false,
    keepDays: 7,
    jobs: 2,
    maximumAttempts: 2,
    dryRun: true,
  };
  restore = await tw.client.workflow.execute('restoreWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId: restoreId,
    args: [input],
  });
  failure = await tw.client.workflow
    .execute('backupWorkflow', {
      taskQueue: config.temporal.taskQueue,
      workflowId: failedId,
      args: [{ database: missingDb, trigger: 'manual', prune: false, verify: false }],
    })
    .then(
      () => new Error('the backup of a missing database succeeded'),
      (err: unknown) => err as Error,
    );
  codecServer = await startConfiguredCodecServer(config, { host: '127.0.0.1', port: 0, corsOrigins: [] });
}, 180_000);

afterAll(async () => {
  await codecServer?.close();
  // Encrypted histories must not become replay fixtures (npm run histories:record collects the
  // run's closed workflows at teardown; the replay test has no key): they go with the test.
  for (const workflowId of [backupId, restoreId, failedId]) {
    await tw?.client.workflowService
      .deleteWorkflowExecution({ namespace: config.temporal.namespace, workflowExecution: { workflowId } })
      .catch(() => undefined);
  }
  await tw?.stop();
  await dropDatabasesLike(config, db);
  rmSync(dir, { recursive: true, force: true });
});

describe('payloads encrypted with DBOPS_PAYLOAD_KEYS', () => {
  it('the dbops client decodes the results: database name and row count', () => {
    expect(backup.database).toBe(db);
    expect(restore.outcome).toBe('dry-run');
    expect(restore.plan.target).toBe(db);
    expect(restore.plan.rows).toBeGreaterThan(1_237);
  });

  it.each([
    ['backup', backupId],
    ['restore dry run', restoreId],
  ])('the raw %s history holds only encrypted payloads: no database name or row count', async (_n, id) => {
    const history = JSON.parse(await rawHistory(id)) as unknown;
    const payloads = payloadsIn(withoutSearchAttributes(history));
    // Input, activity inputs and results, markers, the result: dozens of payloads, all ciphertext.
    expect(payloads.length).toBeGreaterThan(5);
    for (const p of payloads) {
      expect(b64(p.metadata.encoding)).toBe('binary/encrypted');
      expect(b64(p.metadata['encryption-key-id'])).toBe('k2');
    }
    const readable = clearText(withoutSearchAttributes(history));
    expect(readable).not.toContain(db);
    expect(readable).not.toContain(`"rows":${restore.plan.rows}`);
    expect(readable).not.toContain(`${restore.plan.rows} rows`);
    // What stays clear: the search attributes the server indexes. Only the backup's id names the database.
    const indexed = searchAttributesIn(history);
    const naming = Object.entries(indexed).filter(([, v]) => v.includes(db));
    expect(naming).toEqual(id === backupId ? [['DbopsBackupId', JSON.stringify([backup.backupId])]] : []);
  });

  it('failure text is encrypted too: the raw history shows "Encoded failure", the client reads the message', async () => {
    const history = JSON.parse(await rawHistory(failedId)) as { events: Record<string, unknown>[] };
    const failed = history.events.find((e) => 'workflowExecutionFailedEventAttributes' in e);
    expect(failed, 'the backup of a missing database fails').toBeDefined();
    const readable = clearText(withoutSearchAttributes(history));
    expect(readable).not.toContain(missingDb);
    expect(readable).toContain('Encoded failure');
    // The activity's failure and the workflow's (worker and workflow sandbox) carry their text encrypted.
    const encoded: JsonPayload[] = [];
    JSON.stringify(
      history,
      (k, v: unknown) => (k === 'encodedAttributes' && encoded.push(v as JsonPayload), v),
    );
    expect(encoded.length).toBeGreaterThanOrEqual(2);
    for (const p of encoded) expect(b64(p.metadata.encoding)).toBe('binary/encrypted');
    // The dbops client decrypts the whole chain: the cause names the database.
    const chain: string[] = [];
    for (let e: unknown = failure; e instanceof Error; e = (e as { cause?: unknown }).cause)
      chain.push(e.message);
    expect(chain.join('\n')).toContain(missingDb);
    expect(chain.join('\n')).not.toContain('Encoded failure');
    // The temporal CLI pointed at the codec server (as the Web UI is) decrypts the failure text too.
    const decoded = clearText(JSON.parse(await rawHistory(failedId, '--codec-endpoint', codecServer.url)));
    expect(decoded).toContain(`database ${missingDb} does not exist`);
  });

  it('dbops restore status decodes the plan; without the keys it fails naming DBOPS_PAYLOAD_KEYS', async () => {
    const runEnv = { ...env, DBOPS_TEMPORAL_NAMESPACE: config.temporal.namespace };
    const ok = await dbops(runEnv, 'restore', 'status', restoreId, '--json');
    expect(ok.stderr).toBe('');
    const status = JSON.parse(ok.stdout) as {
      workflowStatus: string;
      plan: { target: string; rows: number };
    };
    expect(status.workflowStatus).toBe('COMPLETED');
    expect(status.plan).toMatchObject({ target: db, rows: restore.plan.rows });

    const without = await dbops({ ...runEnv, DBOPS_PAYLOAD_KEYS: undefined }, 'restore', 'status', restoreId);
    expect(without.code).toBe(2);
    expect(without.stderr).toMatch(/key id k2, but DBOPS_PAYLOAD_KEYS is not set/);
  });

  it('the codec server decodes the raw history for the temporal CLI (--codec-endpoint)', async () => {
    const decoded = JSON.parse(await rawHistory(restoreId, '--codec-endpoint', codecServer.url)) as unknown;
    expect(payloadsIn(decoded).filter((p) => b64(p.metadata.encoding) === 'binary/encrypted')).toEqual([]);
    const readable = clearText(decoded);
    expect(readable).toContain(`describe ${db}`);
    expect(readable).toContain(`${restore.plan.rows} rows`);
  });

  it('POST /decode returns the clear payloads, /encode round-trips, an unknown key id is refused', async () => {
    const encrypted = payloadsIn(JSON.parse(await rawHistory(restoreId)));
    const decoded = await post(
      '/decode',
      { payloads: encrypted },
      { 'X-Namespace': config.temporal.namespace },
    );
    expect(decoded.status).toBe(200);
    const clear = (decoded.body.payloads as JsonPayload[]).map((p) => b64(p.data)).join('\n');
    expect(clear).toContain(db);
    expect(clear).toContain(`"rows":${restore.plan.rows}`);

    const plain = defaultPayloadConverter.toPayload({ database: db, rows: 42 });
    const asJson = {
      metadata: { encoding: Buffer.from(plain.metadata!.encoding!).toString('base64') },
      data: Buffer.from(plain.data!).toString('base64'),
    };
    const encoded = await post(`/${config.temporal.namespace}/encode`, { payloads: [asJson] });
    const [sealed] = encoded.body.payloads as JsonPayload[];
    expect(b64(sealed!.metadata.encoding)).toBe('binary/encrypted');
    expect(b64(sealed!.data)).not.toContain(db);
    const back = await post('/decode', { payloads: [sealed] });
    expect(back.body.payloads).toEqual([asJson]);

    // A payload of a key the server does not hold: 400, the id and the fix, never a guess.
    const stranger = new EncryptionCodec(parsePayloadKeys('other', `k0:${key()}`));
    const [foreign] = await stranger.encode([plain]);
    const refused = await post('/decode', {
      payloads: [
        {
          metadata: Object.fromEntries(
            Object.entries(foreign!.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
          ),
          data: Buffer.from(foreign!.data!).toString('base64'),
        },
      ],
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatch(/key id k0, which DBOPS_PAYLOAD_KEYS \(.*keys k2, k1\) does not hold/);
    expect((await post('/decode', { nope: 1 })).status).toBe(400);
  });

  it("CORS answers the Web UI's origin (DBOPS_TEMPORAL_UI_URL) and refuses any other", async () => {
    const ui = new URL(config.temporal.uiUrl).origin;
    const preflight = await fetch(`${codecServer.url}/decode`, {
      method: 'OPTIONS',
      headers: {
        Origin: ui,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type,x-namespace',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(ui);
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/X-Namespace/);
    const other = await post('/decode', { payloads: [] }, { Origin: 'http://evil.example:55555' });
    expect(other.status).toBe(403);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});
