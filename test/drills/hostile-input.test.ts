/**
 * Drill 11: hostile input wherever a user types. The real CLI (a child process, as a person runs
 * it) gets names with quotes, semicolons, `../`, 200 characters and non-ASCII, the system
 * databases as restore targets, malformed DBOPS_* values, and Slack-bound text with quotes,
 * newlines and Slack control sequences. Each must be refused with exit code 2 and a message naming
 * the problem and the fix, and change nothing: no workflow started on the drill's task queue, the
 * watched databases (system ones, the drill's, anything with a hostile name) identical before and
 * after, no file written to the store. A workflow started without the CLI is refused by the
 * workflow itself before any activity runs. Slack receives well-formed, escaped JSON.
 */
import { spawn } from 'node:child_process';
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { failureTypeOf, rootMessage } from '../../common/failures';
import { restoreWorkflowId } from '../../common/ids';
import { SYSTEM_DATABASES } from '../../common/names';
import type { RestoreWorkflowInput } from '../../common/restore';
import { connectClient } from '../../src/client/connection';
import { REPO_ROOT } from '../../src/config';
import { stackVars, testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { fingerprint, populate, sql, waitFor } from '../integration/restore-fixtures';
import { recordDrill, stepLogger } from './kit/report';
import { startSlackReceiver, type SlackReceiver } from './kit/slack-receiver';
import { killAllWorkerProcesses, startWorkerProcess } from './kit/worker-process';

const suffix = uniqueSuffix();
const db = `t_drill_hostile_${suffix}`;
const queue = `drill-hostile-${suffix}`;
const backupDir = path.join(testRun().backupDir, `drill-hostile-${suffix}`);
/** What the drill's CLI runs and worker share: the run's namespace, the drill's queue and folder. */
const runEnv = {
  DBOPS_TEMPORAL_NAMESPACE: testRun().namespace,
  DBOPS_TASK_QUEUE: queue,
  DBOPS_STORAGE: 'local',
  DBOPS_BACKUP_DIR: backupDir,
  DBOPS_DATABASES: db,
};
const config = testConfig(runEnv);
const step = stepLogger('drill 11');

let slack: SlackReceiver;
let connection: Connection;
let client: Client;
let backupId: string;
let fingerprintBefore: Record<string, string>;
/** Measured facts for the summary row, filled in by each test. */
const facts = { cli: 0, watched: 0, files: 0, env: 0 };

interface CliRun {
  args: string[];
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `dbops ...` as a child process: only the dev stack's file, the run's settings and `env`, nothing of this shell. */
function dbops(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        TMPDIR: process.env.TMPDIR,
        NO_COLOR: '1',
        DBOPS_STACK_HOME: stackVars().DBOPS_STACK_HOME,
        ...runEnv,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ args, code, stdout, stderr });
    });
  });
}

/** Runs every command, at most `width` at a time (two cores: each CLI start costs ~1.3 s of CPU). */
async function dbopsAll(commands: string[][], width = 2): Promise<CliRun[]> {
  const out: CliRun[] = new Array<CliRun>(commands.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < commands.length) {
        const i = next++;
        out[i] = await dbops(commands[i]!);
      }
    }),
  );
  return out;
}

/**
 * The databases an injection or a wrong target could touch: the system ones, the drill's, and any
 * whose name is derived from a system database or holds a character no dbops name allows (other
 * test files share this server: their `t_*` databases come and go and are not watched).
 */
async function watchedDatabases(): Promise<string[]> {
  const rows = await sql<{ d: string }>(
    config,
    undefined,
    `SELECT format('%s oid=%s conn=%s template=%s comment=%s', datname, oid, datallowconn, datistemplate,
                   coalesce(shobj_description(oid, 'pg_database'), '')) AS d
       FROM pg_database
      WHERE datname = ANY($1) OR starts_with(datname, $2) OR datname ~ $3
      ORDER BY datname`,
    [SYSTEM_DATABASES, db, '^(postgres|template[01])__|[^A-Za-z0-9_$-]'],
  );
  return rows.map((r) => r.d);
}

/** Every file under the drill's backup folder, with its size. */
async function storeFiles(): Promise<string[]> {
  const entries = await readdir(backupDir, { recursive: true, withFileTypes: true }).catch(() => []);
  const files = entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
  return Promise.all(files.map(async (f) => `${path.relative(backupDir, f)} ${(await stat(f)).size}`)).then(
    (l) => l.sort(),
  );
}

/** Workflows ever started on the drill's task queue (the namespace is the run's, shared by files). */
async function workflowsOnQueue(): Promise<string[]> {
  const ids: string[] = [];
  for await (const wf of client.workflow.list({ query: `TaskQueue = "${queue}"` }))
    ids.push(`${wf.type} ${wf.workflowId}`);
  return ids.sort();
}

beforeAll(async () => {
  slack = await startSlackReceiver('/services/T0HOSTILE/B0HOSTILE/drill11');
  await populate(config, db, 2_000);
  fingerprintBefore = await fingerprint(config, db);
  await startWorkerProcess({ ...runEnv, DBOPS_SLACK_WEBHOOK_URL: slack.url });
  ({ client, connection } = await connectClient(config));
  // The one legitimate backup, taken through the CLI like a person would.
  const backup = await dbops(['backup', '--db', db, '--wait', '--json']);
  expect(backup.code, backup.stderr).toBe(0);
  backupId = (JSON.parse(backup.stdout) as { backupId: string }[])[0]!.backupId;
  step(`worker up, backup ${backupId} taken through the CLI`);
}, 150_000);

afterAll(async () => {
  await connection?.close();
  await killAllWorkerProcesses();
  await slack?.close();
  await sql(config, undefined, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => undefined);
  await rm(backupDir, { recursive: true, force: true });
});

const long = `a${'b'.repeat(199)}`;
const nonAscii = 'rücksicherung_дб';
const injection = `x"; DROP DATABASE ${'postgres'}; --`;

it('hostile names and system targets: the CLI refuses each with exit code 2, naming the fix, and changes nothing', async () => {
  const databasesBefore = await watchedDatabases();
  const filesBefore = await storeFiles();
  const workflowsBefore = await workflowsOnQueue();
  const cases: [string[], RegExp][] = [
    ...SYSTEM_DATABASES.map((t): [string[], RegExp] => [
      ['restore', backupId, '--target', t],
      new RegExp(`restore target "${t}" is a system database .*--target <name>`),
    ]),
    // The target defaults to the backup's database, or to --database for latest: both refused.
    [['restore', 'postgres_20260101_000000'], /restore target "postgres" is a system database/],
    [['restore', 'latest', '--database', 'template1'], /restore target "template1" is a system database/],
    [
      ['restore', backupId, '--target', injection],
      /target database ".*DROP DATABASE.*" is not valid: use letters/,
    ],
    [['restore', backupId, '--target', long], /target database "ab{199}" is not valid: use .*at most 63/],
    [['restore', backupId, '--target', nonAscii], /target database "rücksicherung_дб" is not valid/],
    [
      ['restore', '../../etc/passwd', '--target', db],
      /backup id "..\/..\/etc\/passwd" is not valid: expected/,
    ],
    [
      ['restore', backupId, '--target', db, '--as', 'mallory\u001b[2J'],
      /--as .* contains control characters/,
    ],
    [
      ['backup', '--db', `${db}'; DROP TABLE users; --`],
      /--db ".*DROP TABLE users.*" is not valid: use letters/,
    ],
    [['verify', 'latest', '--database', nonAscii], /--database "rücksicherung_дб" is not valid/],
    [['backups', 'prune', '--db', '..'], /--db ".." is not valid/],
    [['db', 'init', '--database', injection], /--database ".*" is not valid: use letters/],
    [['db', 'init', '--database', db, '--role', `r"; DROP ROLE postgres; --`], /role name .* is not valid/],
  ];
  const runs = await dbopsAll(cases.map(([args]) => args));
  const failures: string[] = [];
  runs.forEach((r, i) => {
    const [, pattern] = cases[i]!;
    if (r.code !== 2 || !pattern.test(r.stderr))
      failures.push(`dbops ${JSON.stringify(r.args)} → exit ${r.code}: ${r.stderr.trim().slice(0, 300)}`);
  });
  expect(failures).toEqual([]);
  step(`${runs.length} hostile CLI runs refused with exit 2`);

  expect(await watchedDatabases()).toEqual(databasesBefore);
  expect(await fingerprint(config, db)).toEqual(fingerprintBefore);
  expect(await storeFiles()).toEqual(filesBefore);
  expect(await workflowsOnQueue()).toEqual(workflowsBefore);
  Object.assign(facts, { cli: runs.length, watched: databasesBefore.length, files: filesBefore.length });
}, 120_000);

it('a restore workflow started without the CLI refuses a system database target before any activity', async () => {
  const databasesBefore = await watchedDatabases();
  const input = (target: string): RestoreWorkflowInput => ({
    backup: backupId,
    target,
    requestedBy: 'drill',
    approvalTimeoutMs: 60_000,
    fourEyes: false,
    keepDays: 1,
    jobs: 1,
    maximumAttempts: 1,
  });
  for (const target of SYSTEM_DATABASES) {
    const handle = await client.workflow.start('restoreWorkflow', {
      taskQueue: queue,
      workflowId: `${restoreWorkflowId(target, new Date())}-${suffix}`,
      args: [input(target)],
    });
    const err = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failureTypeOf(err)).toBe('InvalidInput');
    expect(rootMessage(err)).toMatch(new RegExp(`"${target}" is a system database`));
    const events = (await handle.fetchHistory()).events ?? [];
    expect(events.filter((e) => e.activityTaskScheduledEventAttributes)).toEqual([]);
  }
  expect(await watchedDatabases()).toEqual(databasesBefore);
  step('workflow-level refusals: no activity scheduled');
}, 60_000);

it('malformed DBOPS_* values: one exit-2 error naming each variable and its fix, secrets not echoed', async () => {
  const webhookSecret = `hooks.slack.com/services/T0/B0/sekret${suffix}`;
  const bad: Record<string, [string, RegExp]> = {
    PGPORT: ['fivefourthreetwo', /PGPORT="fivefourthreetwo": must be a port number from 1 to 65535/],
    DBOPS_HTTP_PORT: ['70000', /DBOPS_HTTP_PORT="70000": must be a port number from 1 to 65535/],
    DBOPS_RESTORE_JOBS: ['0', /DBOPS_RESTORE_JOBS="0": must be a whole number from 1 to 64/],
    DBOPS_RESTORE_APPROVAL_TIMEOUT: [
      '24 hours',
      /DBOPS_RESTORE_APPROVAL_TIMEOUT="24 hours": must be a duration like 30s/,
    ],
    DBOPS_RESTORE_FOUR_EYES: ['maybe', /DBOPS_RESTORE_FOUR_EYES="maybe": must be true or false/],
    DBOPS_TEMPORAL_UI_URL: [
      'javascript:alert(1)',
      /DBOPS_TEMPORAL_UI_URL="javascript:alert\(1\)": must be an http:\/\/ or https:\/\/ URL/,
    ],
    DBOPS_SLACK_WEBHOOK_URL: [
      webhookSecret,
      /DBOPS_SLACK_WEBHOOK_URL=<redacted>: must be an http:\/\/ or https:\/\/ URL/,
    ],
    DBOPS_DATABASES: [
      `${db},${injection}`,
      /DBOPS_DATABASES=.*DROP DATABASE postgres; --": must be a PostgreSQL name/,
    ],
    DBOPS_S3_PREFIX: ['a/../b', /DBOPS_S3_PREFIX="a\/..\/b": must not contain \.\./],
  };
  const run = await dbops(
    ['restore', backupId, '--target', db],
    Object.fromEntries(Object.entries(bad).map(([k, [v]]) => [k, v])),
  );
  expect(run.code).toBe(2);
  const missing = Object.entries(bad)
    .filter(([, [, pattern]]) => !pattern.test(run.stderr))
    .map(([k]) => k);
  expect(missing, run.stderr).toEqual([]);
  expect(run.stderr).not.toContain(`sekret${suffix}`);
  expect(await workflowsOnQueue()).not.toContainEqual(expect.stringMatching(new RegExp(`restore-${db}`)));
  facts.env = Object.keys(bad).length;
}, 60_000);

it('Slack text with quotes, newlines and control sequences arrives as well-formed, escaped JSON', async () => {
  const copy = `${db}_copy`;
  const requester = 'Mallory "M" <!channel>';
  const approver = `Eve O'Brien <@U0001>`;
  const comment = 'first line\nsecond "quoted" line <!here> & <https://evil.example|click me> \\ done';
  const start = await dbops([
    'restore',
    backupId,
    '--target',
    copy,
    '--allow-unlisted-target',
    '--as',
    requester,
    '--json',
  ]);
  expect(start.code, start.stderr).toBe(0);
  const { workflowId, status } = JSON.parse(start.stdout) as {
    workflowId: string;
    status: { planHash: string };
  };
  const before = slack.bodies.length;
  const reject = await dbops([
    'restore',
    'reject',
    workflowId,
    '--plan-hash',
    status.planHash,
    '--as',
    approver,
    '--comment',
    comment,
    '--json',
  ]);
  expect(reject.code, reject.stderr).toBe(0);
  await waitFor(
    'the rejection notice',
    async () => (slack.bodies.length > before ? true : undefined),
    30_000,
  );

  // Every body parsed as JSON (the receiver answers 400 otherwise and keeps no payload).
  expect(slack.payloads.length).toBe(slack.bodies.length);
  const notice = slack.payloads.at(-1)! as { text: string; blocks: { fields?: { text: string }[] }[] };
  expect(notice.text).toBe(
    `:no_entry: restore of ${copy} from ${backupId} rejected by Eve O'Brien &lt;@U0001&gt; (unsigned)`,
  );
  const escaped = comment.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  expect(notice.blocks[1]!.fields!.map((f) => f.text)).toContain(`*Comment*\n${escaped}`);
  // No Slack control sequence from the typed text survives: only the run's link is one.
  const raw = slack.bodies.at(-1)!;
  for (const seq of ['<!here>', '<!channel>', '<@U0001>', '<https://evil.example'])
    expect(raw).not.toContain(seq);
  expect((raw.match(/<http/g) ?? []).length).toBe(1);

  // Rejected: nothing was restored, no shadow made.
  const [copies] = await sql<{ n: number }>(
    config,
    undefined,
    'SELECT count(*)::int AS n FROM pg_database WHERE starts_with(datname, $1)',
    [copy],
  );
  expect(copies!.n).toBe(0);
  expect(await fingerprint(config, db)).toEqual(fingerprintBefore);
  recordDrill({
    drill: '11. Hostile input',
    fault: `${facts.cli} CLI runs: quotes, ;, ../, 200 chars, non-ASCII, escape codes, targets postgres/template0/1; ${facts.env} bad DBOPS_* values; Slack text with quotes, newlines, <!here>`,
    dataCheck: `${facts.watched} watched databases (oid, comment) and ${facts.files} store files before = after; table checksums equal; no workflow started by the CLI`,
    outcome: `all exit 2 naming the fix; a direct restoreWorkflow to postgres/template0/1: InvalidInput, 0 activities; Slack JSON parsed, control text escaped`,
  });
}, 90_000);
