import { Context } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { LogTimestamp, workflowLogAttributes } from '@temporalio/worker';
import type { WorkflowInfo } from '@temporalio/workflow';
import { describe, expect, it } from 'vitest';
import { ConfigError, describeConfig, loadConfig } from '../../src/config';
import {
  createLogger,
  knownSecrets,
  prettyLine,
  REDACTED,
  type LoggerOptions,
  type LogStream,
} from '../../src/worker/logging';

/** A logger writing into an array; `isTTY` makes the stream a terminal. */
function capture(options: Partial<LoggerOptions> = {}, isTTY = false) {
  const lines: string[] = [];
  const stream: LogStream = { write: (line: string) => lines.push(line), isTTY };
  const log = createLogger({ level: 'info', format: 'auto', ...options, stream });
  const records = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log, lines, records };
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe('worker log: JSON lines', () => {
  it("an activity's Context.current().log line carries the SDK's context as top-level fields", async () => {
    const { log, lines, records } = capture();
    const env = new MockActivityEnvironment(
      {
        activityType: 'pruneBackups',
        activityId: '7',
        attempt: 3,
        taskQueue: 'dbops',
        namespace: 'prod',
        workflowType: 'backupWorkflow',
        workflowExecution: { workflowId: 'backup-recsys-20261204', runId: 'run-42' },
      },
      { logger: log },
    );
    await env.run(async () => {
      Context.current().log.info('backup retention applied', { database: 'recsys', deleted: ['b1'] });
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\{.*\}\n$/);
    const [line] = records();
    expect(line).toMatchObject({
      level: 'info',
      msg: 'backup retention applied',
      workflowId: 'backup-recsys-20261204',
      runId: 'run-42',
      workflowType: 'backupWorkflow',
      activityType: 'pruneBackups',
      activityId: '7',
      attempt: 3,
      namespace: 'prod',
      taskQueue: 'dbops',
      sdkComponent: 'activity',
      database: 'recsys',
      deleted: ['b1'],
    });
    expect(line!.time).toMatch(ISO);
    // The SDK's name for the run, renamed; the task token (it completes the activity) is gone.
    expect(line).not.toHaveProperty('workflowRunId');
    expect(line).not.toHaveProperty('taskToken');
  });

  it("a workflow's line keeps workflowId and runId, and the time the workflow logged it", () => {
    const { log, records } = capture({ format: 'json' });
    const info = {
      namespace: 'prod',
      taskQueue: 'dbops',
      workflowId: 'restore-recsys-1',
      runId: 'run-7',
      workflowType: 'restoreWorkflow',
    } as WorkflowInfo;
    const at = Date.UTC(2026, 11, 4, 3, 0, 0, 123);
    log.warn('retention failed; the backup itself succeeded', {
      ...workflowLogAttributes(info),
      sdkComponent: 'workflow',
      [LogTimestamp]: BigInt(at) * 1_000_000n,
    });
    expect(records()[0]).toMatchObject({
      level: 'warn',
      time: '2026-12-04T03:00:00.123Z',
      workflowId: 'restore-recsys-1',
      runId: 'run-7',
      workflowType: 'restoreWorkflow',
      namespace: 'prod',
      taskQueue: 'dbops',
      sdkComponent: 'workflow',
    });
  });

  it('drops lines below the level, renames fields pino writes itself and serializes errors', () => {
    const { log, records } = capture({ level: 'warn', format: 'json' });
    log.info('not shown');
    log.debug('not shown either');
    log.error('could not drop the shadow database', {
      error: new Error('connection refused'),
      level: 'shadow',
      msg: 'x',
    });
    const all = records();
    expect(all.map((r) => r.msg)).toEqual(['could not drop the shadow database']);
    expect(all[0]).toMatchObject({
      level: 'error',
      meta_level: 'shadow',
      meta_msg: 'x',
      error: { type: 'Error', message: 'connection refused' },
    });
    expect((all[0]!.error as { stack: string }).stack).toMatch(/^Error: connection refused\n\s+at /);
  });
});

describe('worker log: human format', () => {
  it('a terminal gets the human format, a pipe or file JSON, unless DBOPS_LOG_FORMAT says otherwise', () => {
    const tty = capture({}, true);
    tty.log.info('dbops worker stopped', { taskQueue: 'dbops', note: 'two words' });
    expect(tty.lines[0]).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}dbops worker stopped taskQueue=dbops note="two words"\n$/,
    );
    expect(tty.lines[0]).not.toContain('\x1b[');

    const pipe = capture({}, false);
    pipe.log.info('dbops worker stopped');
    expect(JSON.parse(pipe.lines[0]!)).toMatchObject({ msg: 'dbops worker stopped' });

    const forcedJson = capture({ format: 'json' }, true);
    forcedJson.log.info('x');
    expect(JSON.parse(forcedJson.lines[0]!)).toMatchObject({ msg: 'x' });
    const forcedPretty = capture({ format: 'pretty' }, false);
    forcedPretty.log.warn('y');
    expect(forcedPretty.lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN {2}y\n$/);
  });

  it('colours only when asked, and shows an error with its stack frames below the line', () => {
    const { log, lines } = capture({ format: 'pretty', colour: true });
    log.error('Workflow failed', { error: new Error('boom') });
    const [first, ...frames] = lines[0]!.trimEnd().split('\n');
    expect(first).toContain('\x1b[31mERROR\x1b[39m');
    expect(first).toContain('error=\x1b[22m"Error: boom"');
    expect(frames.length).toBeGreaterThan(0);
    expect(frames.every((f) => /^ {4}at /.test(f))).toBe(true);
  });

  it('a line that is not JSON is shown as it is, never lost', () => {
    expect(prettyLine('not json\n', false)).toBe('not json\n');
  });
});

describe('worker log: secrets', () => {
  it('redacts secret-named fields at any depth, in any case, in arrays', () => {
    const { log, lines, records } = capture({ format: 'json' });
    log.info('settings', {
      PGPASSWORD: 'p1-value',
      pg: { host: 'db', password: 'p2-value' },
      deep: { a: { b: { c: { Password: 'p3-value' } } } },
      list: [{ apiKey: 'p4-value' }],
      headers: { Authorization: 'Bearer p5-value' },
      s3: { secretAccessKey: 'p6-value', sessionToken: 'p7-value' },
      DBOPS_SLACK_WEBHOOK_URL: 'https://hooks.example/p8-value',
      unset: { password: undefined },
    });
    expect(lines[0]).not.toMatch(/p\d-value/);
    expect(records()[0]).toMatchObject({
      PGPASSWORD: REDACTED,
      pg: { host: 'db', password: REDACTED },
      deep: { a: { b: { c: { Password: REDACTED } } } },
      list: [{ apiKey: REDACTED }],
      headers: { Authorization: REDACTED },
      s3: { secretAccessKey: REDACTED, sessionToken: REDACTED },
      DBOPS_SLACK_WEBHOOK_URL: REDACTED,
    });
  });

  it('scrubs known secret values wherever they occur: message, error, any field, both formats', () => {
    const secret = 'pgpw-"q\\uote-Zx9';
    for (const format of ['json', 'pretty'] as const) {
      const { log, lines } = capture({ format, secrets: [secret, 'xoxdrill13tok', 'ab', undefined] });
      log.warn(`connect failed for postgres://u:${secret}@db/recsys`, {
        error: new Error(`password authentication failed: ${secret}`),
        note: { url: 'https://hooks.slack.com/services/T/B/xoxdrill13tok' },
        short: 'ab is too short to scrub',
      });
      const text = lines.join('');
      expect(text).not.toContain('xoxdrill13tok');
      expect(text).not.toContain(JSON.stringify(secret).slice(1, -1));
      expect(text).not.toContain(secret);
      expect(text).toContain(`postgres://u:${REDACTED}@db/recsys`);
      expect(text).toContain('ab is too short to scrub');
      if (format === 'json') expect(JSON.parse(text)).toMatchObject({ level: 'warn' });
    }
  });

  it("knownSecrets lists the config's secrets and the secret variables of the environment", () => {
    const env = {
      DATABASE_URL: 'postgres://app:db-pass-1@db:55432/recsys',
      DBOPS_TEMPORAL_API_KEY: 'temporal-key-1',
      DBOPS_MILVUS_TOKEN: 'milvus-token-1',
      DBOPS_SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T/B/slack-1',
      AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE1',
      AWS_SECRET_ACCESS_KEY: 'aws-secret-1',
      DBOPS_STACK_HOME: '/nonexistent',
    };
    expect(knownSecrets(loadConfig(env), env).sort()).toEqual(
      [
        'db-pass-1',
        env.DATABASE_URL,
        'temporal-key-1',
        'milvus-token-1',
        env.DBOPS_SLACK_WEBHOOK_URL,
        'AKIAEXAMPLE1',
        'aws-secret-1',
      ].sort(),
    );
  });
});

describe('DBOPS_LOG_LEVEL and DBOPS_LOG_FORMAT', () => {
  const base = { DBOPS_STACK_HOME: '/nonexistent' };

  it('default to info and auto, accept any case, and show in `dbops config`', () => {
    expect(loadConfig(base).log).toEqual({ level: 'info', format: 'auto' });
    const env = { ...base, DBOPS_LOG_LEVEL: 'DEBUG', DBOPS_LOG_FORMAT: 'json' };
    const config = loadConfig(env);
    expect(config.log).toEqual({ level: 'debug', format: 'json' });
    const rows = describeConfig(config, env).filter((r) => r.name.startsWith('DBOPS_LOG_'));
    expect(rows).toEqual([
      { name: 'DBOPS_LOG_LEVEL', value: 'debug', source: 'env' },
      { name: 'DBOPS_LOG_FORMAT', value: 'json', source: 'env' },
    ]);
  });

  it('a bad value fails naming the variable and the values it takes', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig({ ...base, ...env });
      } catch (err) {
        if (err instanceof ConfigError) return err.problems;
        throw err;
      }
      return [];
    };
    expect(problems({ DBOPS_LOG_LEVEL: 'verbose' })).toEqual([
      'DBOPS_LOG_LEVEL="verbose": must be one of trace, debug, info, warn, error',
    ]);
    expect(problems({ DBOPS_LOG_FORMAT: 'text' })).toEqual([
      'DBOPS_LOG_FORMAT="text": must be one of auto, json, pretty',
    ]);
  });
});
