/**
 * Drill 13: secrets. A backup (custom and plain), a verification and an approved restore run with
 * a PostgreSQL password that is really checked (a private server with scram-sha-256), the dev
 * stack's S3 keys and a Slack webhook whose path is a token. Meanwhile a sampler reads the argv and
 * environment of every process the worker starts (kit/proc-sampler.ts). Afterwards the workflow
 * histories (payloads decoded), the worker's log and every argv must hold none of the secrets, and
 * each child's environment must stay within its allow-list:
 * - pg_dump, pg_restore, psql connecting to a server: PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD
 *   PGPASSFILE PGSSLMODE PGAPPNAME PGCONNECT_TIMEOUT PGOPTIONS PATH, and the password must be there
 *   (PGPASSWORD or PGPASSFILE);
 * - every other child (zstd, tar, `pg_restore --list`, `<tool> --version`): PATH only.
 * No AWS_* key, no Slack URL, no DBOPS_* variable reaches any child. (tsx's esbuild service, a child
 * only because the drill runs the worker from source, is left out of the environment check.)
 */
import { readlinkSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startBackup } from '../../src/client/backup';
import { connectClient } from '../../src/client/connection';
import { decideRestore, pollRestoreStatus, startRestore } from '../../src/client/restore';
import { startVerify } from '../../src/client/verify';
import { s3Overrides, stackVars, testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { fingerprint, populate } from '../integration/restore-fixtures';
import { startPrivatePostgres, type PrivatePostgres } from './kit/private-servers';
import { startProcSampler, type ProcSample, type ProcSampler } from './kit/proc-sampler';
import { recordDrill, stepLogger } from './kit/report';
import { startSlackReceiver, type SlackReceiver } from './kit/slack-receiver';
import { killAllWorkerProcesses, startWorkerProcess, type WorkerProcess } from './kit/worker-process';

const suffix = uniqueSuffix();
const db = `t_drill_secrets_${suffix}`;
const queue = `drill-secrets-${suffix}`;
const logFile = path.join(testRun().backupDir, `drill-secrets-${suffix}.worker.log`);
const pgPassword = `pgpw-${suffix}-Zx9`;
const slackToken = `xoxdrill13${suffix}`;
const stack = stackVars();
/** Every secret the worker holds, by name: none may appear in histories, logs or argv. */
const secrets: Record<string, string> = {
  PGPASSWORD: pgPassword,
  AWS_SECRET_ACCESS_KEY: stack.AWS_SECRET_ACCESS_KEY!,
  AWS_ACCESS_KEY_ID: stack.AWS_ACCESS_KEY_ID!,
  'Slack webhook token': slackToken,
};
const PG_TOOLS = new Set(['pg_dump', 'pg_restore', 'psql']);
const PG_TOOL_ENV = new Set([
  'PGHOST',
  'PGPORT',
  'PGUSER',
  'PGDATABASE',
  'PGPASSWORD',
  'PGPASSFILE',
  'PGSSLMODE',
  // TLS files (paths, not secrets): pg_dump, pg_restore and psql verify the server as the driver does.
  'PGSSLROOTCERT',
  'PGSSLCERT',
  'PGSSLKEY',
  'PGSSLCRL',
  'PGAPPNAME',
  'PGCONNECT_TIMEOUT',
  'PGOPTIONS',
  'PATH',
]);
const OTHER_TOOL_ENV = new Set(['PATH']);
/**
 * Children of the test set-up, not of dbops: tsx's esbuild service exists only because the drill
 * runs the worker from source (`node --import tsx`); the image runs dist/ with plain node. Their
 * argv is still searched.
 */
const HARNESS = new Set(['esbuild']);

const step = stepLogger('drill 13');

let pg: PrivatePostgres;
let slack: SlackReceiver;
let worker: WorkerProcess;
let sampler: ProcSampler;
let connection: Connection;
let client: Client;
let s3: Record<string, string>;
const config = () => testConfig({ ...pg.env, ...s3, DBOPS_TASK_QUEUE: queue, DBOPS_DATABASES: db });

beforeAll(async () => {
  pg = await startPrivatePostgres({ password: pgPassword });
  slack = await startSlackReceiver(`/services/T0DRILL13/B0DRILL13/${slackToken}`);
  s3 = s3Overrides(`drill-secrets-${suffix}`);
  await populate(config(), db, 20_000);
  worker = await startWorkerProcess(
    {
      ...pg.env,
      ...s3,
      AWS_ACCESS_KEY_ID: stack.AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: stack.AWS_SECRET_ACCESS_KEY,
      AWS_REGION: stack.AWS_REGION ?? 'us-east-1',
      DBOPS_SLACK_WEBHOOK_URL: slack.url,
      DBOPS_TASK_QUEUE: queue,
      DBOPS_TEMPORAL_NAMESPACE: testRun().namespace,
      DBOPS_DATABASES: db,
    },
    { logFile },
  );
  sampler = startProcSampler(worker.pid);
  ({ client, connection } = await connectClient(config()));
  step('private PostgreSQL (scram), S3, Slack receiver and worker ready; sampling its children');
}, 150_000);

afterAll(async () => {
  await sampler?.stop();
  await connection?.close();
  await killAllWorkerProcesses();
  await slack?.close();
  await pg?.close();
  await rm(logFile, { force: true });
});

/** Every string and every decoded byte field (payloads) of a history, as one text. */
function historyText(value: unknown, out: string[] = []): string[] {
  if (value instanceof Uint8Array) out.push(Buffer.from(value).toString('utf8'));
  else if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) historyText(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) historyText(v, out);
  return out;
}

/** Which secrets `text` holds, by name. */
function leaked(text: string): string[] {
  return Object.entries(secrets)
    .filter(([, secret]) => text.includes(secret))
    .map(([name]) => name);
}

const toolOf = (s: ProcSample) => path.basename(s.exe || s.argv[0] || '?');
/** pg_dump, pg_restore or psql talking to a server (not `--version`, not `pg_restore --list` of a file). */
const connects = (s: ProcSample) =>
  PG_TOOLS.has(toolOf(s)) && !s.argv.some((a) => a === '--version' || a === '--list');

it('backup, verify and restore with a password, S3 keys and a Slack webhook: no secret in histories, log, argv or a child env it does not need', async () => {
  const backup = await (await startBackup(client, config(), { database: db })).result();
  expect(backup.outcome).toBe('succeeded');
  const plain = await (
    await startBackup(client, config(), { database: db, format: 'plain', now: new Date(Date.now() + 60_000) })
  ).result();
  expect(plain.outcome).toBe('succeeded');
  step(`backups ${backup.backupId} (custom) and ${plain.backupId} (plain)`);

  const verified = await (await startVerify(client, config(), backup.backupId)).result();
  expect(verified.status).toBe('passed');
  step(`verification ${verified.status}`);

  const before = await fingerprint(config(), db);
  const handle = await startRestore(client, config(), {
    backup: plain.backupId,
    target: db,
    requestedBy: 'alice',
  });
  const waiting = await pollRestoreStatus(handle, (s) => s.phase === 'awaiting-approval');
  expect(waiting?.phase).toBe('awaiting-approval');
  await decideRestore(client, handle.workflowId, {
    decision: 'approve',
    by: 'bob',
    planHash: waiting!.planHash!,
  });
  const restored = await handle.result();
  expect(restored.outcome).toBe('restored');
  expect(await fingerprint(config(), db)).toEqual(before);
  step(`restored ${db} from ${plain.backupId} (psql) with the password checked by scram`);
  await sampler.stop();

  // 1. Workflow histories, payloads decoded.
  const histories: { id: string; text: string }[] = [];
  for await (const wf of client.workflow.list({ query: `TaskQueue = "${queue}"` })) {
    const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    histories.push({ id: wf.workflowId, text: historyText(history).join('\n') });
  }
  expect(histories.length).toBeGreaterThanOrEqual(4);
  // The payloads were really decoded: the backup ids are in them as text.
  expect(histories.some((h) => h.text.includes(`"backupId":"${backup.backupId}"`))).toBe(true);
  const historyLeaks = histories.flatMap((h) => leaked(h.text).map((s) => `${s} in history of ${h.id}`));

  // 2. The worker's log (stdout and stderr).
  const log = await readFile(logFile, 'utf8');
  expect(log).toMatch(/polling task queue/i);
  const logLeaks = leaked(log).map((s) => `${s} in the worker log`);

  // 3. The argv of the worker and every child; 4. each child's environment against its allow-list.
  const samples = sampler.samples();
  const ownArgv = (await readFile(`/proc/${worker.pid}/cmdline`, 'utf8')).split('\0');
  const argvLeaks = [ownArgv, ...samples.map((s) => s.argv)].flatMap((argv) =>
    leaked(argv.join(' ')).map((s) => `${s} in argv ${JSON.stringify(argv.slice(0, 3))}`),
  );
  const workerExe = readlinkSync(`/proc/${worker.pid}/exe`);
  // Between fork and exec a child still shows the worker's image and environment, and during exec
  // an empty argv (and often environment): neither is the tool's own state yet; its next sample is.
  const tools = samples.filter((s) => s.exe !== workerExe && s.argv.length > 0 && !HARNESS.has(toolOf(s)));
  const envProblems: string[] = [];
  for (const s of tools) {
    const tool = toolOf(s);
    const allowed = connects(s) ? PG_TOOL_ENV : OTHER_TOOL_ENV;
    const extra = Object.keys(s.env).filter((k) => !allowed.has(k));
    if (extra.length)
      envProblems.push(
        `${tool} ${JSON.stringify(s.argv.slice(0, 3))} (pid ${s.pid}) got ${extra.sort().join(' ')}`,
      );
    const values = Object.entries(s.env)
      .filter(([k]) => k !== 'PGPASSWORD')
      .map(([, v]) => v)
      .join('\n');
    for (const name of leaked(values))
      envProblems.push(`${tool} (pid ${s.pid}) got ${name} in its environment`);
    if (connects(s) && s.env.PGPASSWORD !== pgPassword && !s.env.PGPASSFILE)
      envProblems.push(
        `${tool} (pid ${s.pid}) got neither PGPASSWORD nor PGPASSFILE: ${JSON.stringify(s.argv)} with ${Object.keys(s.env).length} variables`,
      );
  }
  const seen = [...new Set(tools.map(toolOf))].sort();
  step(`${sampler.scans()} scans, ${samples.length} samples; tools seen: ${seen.join(', ')}`);
  expect({ historyLeaks, logLeaks, argvLeaks, envProblems }).toEqual({
    historyLeaks: [],
    logLeaks: [],
    argvLeaks: [],
    envProblems: [],
  });
  // The sampler saw every kind of child it must judge.
  expect(seen).toEqual(expect.arrayContaining(['pg_dump', 'pg_restore', 'psql', 'zstd']));
  // The webhook was really used: the secret path received the notices.
  expect(slack.payloads.length).toBeGreaterThanOrEqual(3);

  const counts = (t: string) => tools.filter((s) => toolOf(s) === t).length;
  recordDrill({
    drill: '13. Secrets',
    fault: `PGPASSWORD (scram server), S3 keys, Slack token URL set; backup custom+plain, verify, approved restore; /proc sampled ${sampler.scans()} times`,
    dataCheck: `${histories.length} histories decoded, worker log (${log.length} chars), ${samples.length} argv; env of pg_dump×${counts('pg_dump')} pg_restore×${counts('pg_restore')} psql×${counts('psql')} zstd×${counts('zstd')}`,
    outcome: `0 secrets in histories, log, argv; pg tools got PG* only (password via PGPASSWORD), others PATH only; restore checksum = before; ${slack.payloads.length} Slack posts`,
  });
}, 180_000);
