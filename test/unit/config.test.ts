import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseDurationMs, describeConfig } from '../../src/config';
import { configProblems } from '../helpers/errors';

const base = { DBOPS_STACK_HOME: '/nonexistent-stack-home' };

const problemsOf = (env: Record<string, string>) => configProblems({ ...base, ...env });

describe('config', () => {
  it('defaults point at the dev stack and the result is frozen', () => {
    const config = loadConfig(base);
    expect(config.pg).toMatchObject({ host: '127.0.0.1', port: 55432, user: 'postgres', database: 'recsys' });
    expect(config.temporal.address).toBe('127.0.0.1:17233');
    expect(config.milvus.address).toBe('127.0.0.1:19531');
    expect(config.storage.kind).toBe('local');
    expect(config.databases).toEqual(['recsys']);
    expect(config.backup).toMatchObject({
      retentionDays: 30,
      minKeep: 7,
      format: 'custom',
      compression: 'zstd',
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.pg)).toBe(true);
    expect(() => {
      (config.pg as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it.each([
    ['PGPORT', 'abc', /PGPORT="abc"/],
    ['PGPORT', '70000', /PGPORT="70000"/],
    ['PGDATABASE', 'x; DROP DATABASE y', /PGDATABASE=.*PostgreSQL name/],
    ['PGSSLMODE', 'sometimes', /PGSSLMODE="sometimes"/],
    ['DBOPS_TEMPORAL_ADDRESS', 'localhost', /DBOPS_TEMPORAL_ADDRESS="localhost": must be host:port/],
    ['DBOPS_TEMPORAL_UI_URL', 'not a url', /DBOPS_TEMPORAL_UI_URL=/],
    ['DBOPS_MILVUS_ADDRESS', 'milvus', /DBOPS_MILVUS_ADDRESS=/],
    ['DBOPS_MILVUS_DIM', '0', /DBOPS_MILVUS_DIM="0"/],
    ['DBOPS_MILVUS_METRIC', 'cosine-ish', /DBOPS_MILVUS_METRIC=/],
    ['DBOPS_STORAGE', 'ftp', /DBOPS_STORAGE="ftp"/],
    ['DBOPS_S3_BUCKET', 'Bad_Bucket', /DBOPS_S3_BUCKET="Bad_Bucket": must be an S3 bucket name/],
    ['DBOPS_S3_PREFIX', 'a/../b', /DBOPS_S3_PREFIX=.*\.\./],
    ['DBOPS_BACKUP_FORMAT', 'tar', /DBOPS_BACKUP_FORMAT="tar"/],
    ['DBOPS_BACKUP_COMPRESSION', 'lz4', /DBOPS_BACKUP_COMPRESSION="lz4"/],
    ['DBOPS_RETENTION_DAYS', '-1', /DBOPS_RETENTION_DAYS="-1"/],
    ['DBOPS_RETENTION_MIN_KEEP', '0', /DBOPS_RETENTION_MIN_KEEP="0"/],
    ['DBOPS_BACKUP_TIME', '25:00', /DBOPS_BACKUP_TIME="25:00": must be HH:MM/],
    [
      'DBOPS_RESTORE_APPROVAL_TIMEOUT',
      'forever',
      /DBOPS_RESTORE_APPROVAL_TIMEOUT="forever": must be a duration/,
    ],
    ['DBOPS_RESTORE_FOUR_EYES', 'maybe', /DBOPS_RESTORE_FOUR_EYES="maybe": must be true or false/],
    ['DBOPS_DATABASES', 'recsys,bad name', /DBOPS_DATABASES=.*"bad name"/],
    ['DBOPS_SLACK_WEBHOOK_URL', 'hooks.slack.com/x', /DBOPS_SLACK_WEBHOOK_URL=<redacted>/],
    ['DATABASE_URL', 'mysql://x', /DATABASE_URL=<redacted>: must start with postgres/],
    ['DBOPS_HTTP_PORT', 'eighty', /DBOPS_HTTP_PORT="eighty"/],
  ])('%s=%s is rejected naming the variable', (name, value, pattern) => {
    const problems = problemsOf({ [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(pattern);
  });

  it('reports every bad variable at once', () => {
    const problems = problemsOf({ PGPORT: 'x', DBOPS_MILVUS_DIM: 'y', DBOPS_BACKUP_FORMAT: 'z' });
    expect(problems.map((p) => p.split('=')[0])).toEqual([
      'PGPORT',
      'DBOPS_MILVUS_DIM',
      'DBOPS_BACKUP_FORMAT',
    ]);
  });

  it('cross-field rules name both variables and the fix', () => {
    expect(problemsOf({ DBOPS_STORAGE: 's3' })[0]).toMatch(/DBOPS_STORAGE=s3 needs DBOPS_S3_BUCKET/);
    expect(problemsOf({ DBOPS_S3_BUCKET: 'bk1', DBOPS_S3_SSE: 'aws:kms' })[0]).toMatch(/DBOPS_S3_KMS_KEY_ID/);
  });

  it('DATABASE_URL fills the libpq settings; explicit PG* variables win', () => {
    const config = loadConfig({
      ...base,
      DATABASE_URL: 'postgres://app:s%40cret@db.internal:6543/shop?sslmode=require',
    });
    expect(config.pg).toMatchObject({
      host: 'db.internal',
      port: 6543,
      user: 'app',
      password: 's@cret',
      database: 'shop',
      sslmode: 'require',
    });
    const overridden = loadConfig({
      ...base,
      DATABASE_URL: 'postgres://app@db.internal/shop',
      PGDATABASE: 'other',
    });
    expect(overridden.pg.database).toBe('other');
  });

  it('a verification server: DBOPS_VERIFY_PGHOST, other settings fall back, never the production password', () => {
    expect(loadConfig(base).verifyPg).toBeUndefined();
    const config = loadConfig({
      ...base,
      PGPORT: '6543',
      PGUSER: 'ops',
      PGPASSWORD: 'production-secret',
      DBOPS_VERIFY_PGHOST: 'verify.internal',
    });
    expect(config.verifyPg).toMatchObject({
      host: 'verify.internal',
      port: 6543,
      user: 'ops',
      database: 'postgres',
      password: undefined,
    });
    expect(problemsOf({ DBOPS_VERIFY_PGPORT: '5433' })[0]).toMatch(
      /DBOPS_VERIFY_PGPORT set without DBOPS_VERIFY_PGHOST/,
    );
    expect(problemsOf({ DBOPS_VERIFY_PGHOST: 'v', DBOPS_VERIFY_PGPORT: 'x' })[0]).toMatch(
      /DBOPS_VERIFY_PGPORT="x"/,
    );
  });

  it('the scratch folder defaults to the system temp folder', () => {
    expect(loadConfig(base).scratchDir).toBe(os.tmpdir());
    expect(loadConfig({ ...base, DBOPS_SCRATCH_DIR: '/var/tmp/dbops' }).scratchDir).toBe('/var/tmp/dbops');
  });

  it('a bucket selects S3 storage, with path-style for custom endpoints', () => {
    const config = loadConfig({
      ...base,
      DBOPS_S3_BUCKET: 'backups-1',
      DBOPS_S3_ENDPOINT: 'http://127.0.0.1:19002',
      DBOPS_S3_ALLOW_HTTP: 'true',
    });
    expect(config.storage).toMatchObject({
      kind: 's3',
      bucket: 'backups-1',
      forcePathStyle: true,
      prefix: 'backups',
    });
  });

  it('describeConfig never shows a secret', () => {
    const env = {
      ...base,
      PGPASSWORD: 'pg-secret-value',
      DBOPS_VERIFY_PGHOST: 'verify.internal',
      DBOPS_VERIFY_PGPASSWORD: 'verify-secret-value',
      DBOPS_SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T/B/secret-token',
      DBOPS_S3_BUCKET: 'bk1',
      AWS_SECRET_ACCESS_KEY: 'aws-secret-value',
    };
    const text = JSON.stringify(describeConfig(loadConfig(env), env));
    expect(text).not.toContain('pg-secret-value');
    expect(text).not.toContain('verify-secret-value');
    expect(text).not.toContain('secret-token');
    expect(text).not.toContain('aws-secret-value');
    expect(text).toContain('<redacted>');
  });

  it('parses durations', () => {
    expect(parseDurationMs('24h')).toBe(86_400_000);
    expect(parseDurationMs('1.5s')).toBe(1500);
    expect(parseDurationMs('7d')).toBe(604_800_000);
  });
});
