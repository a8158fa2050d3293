import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { pgChildEnv } from '../../activities/postgres/connection';
import {
  ConfigError,
  describeConfig,
  loadConfig,
  onceEach,
  REPO_ROOT,
  SECRET_VARIABLES,
  UNREAD_SPEC_VARIABLES,
  VARIABLE_ALIASES,
} from '../../src/config';

const base = { DBOPS_STACK_HOME: '/nonexistent-stack-home' };

/** loadConfig with `env`, collecting its warnings. */
function load(env: Record<string, string>) {
  const warnings: string[] = [];
  const config = loadConfig({ ...base, ...env }, (line) => warnings.push(line));
  return { config, warnings };
}

function configError(env: Record<string, string>): ConfigError {
  try {
    load(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

/**
 * Every variable the spec's scripts and client read: backup.sh and restore.sh (`${NAME:-default}`
 * and `$POSTGRES_PASSWORD`), and the Python Milvus client (os.getenv).
 */
const SPEC_VARIABLES = [
  'BACKUP_DIR',
  'DRY_RUN',
  'MILVUS_HOST',
  'MILVUS_PORT',
  'POSTGRES_DB',
  'POSTGRES_HOST',
  'POSTGRES_PASSWORD',
  'POSTGRES_PORT',
  'POSTGRES_USER',
  'RETENTION_DAYS',
  'S3_BUCKET',
  'SLACK_WEBHOOK',
];

const specEnv = {
  POSTGRES_HOST: 'db.internal',
  POSTGRES_PORT: '6543',
  POSTGRES_USER: 'backup',
  POSTGRES_PASSWORD: 'pw-from-the-scripts',
  POSTGRES_DB: 'recommend',
  BACKUP_DIR: '/srv/backups',
  SLACK_WEBHOOK: 'https://hooks.slack.example/services/T/B/secret-part',
  RETENTION_DAYS: '14',
};

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the spec scripts’ variable names', () => {
  it('the alias table covers every variable of the spec’s scripts (the rest are warned as unread)', () => {
    const handled = [...Object.keys(VARIABLE_ALIASES), ...Object.keys(UNREAD_SPEC_VARIABLES)].sort();
    expect(handled).toEqual(SPEC_VARIABLES);
  });

  it('are read for the unset dbops variables', () => {
    const { config } = load(specEnv);
    expect(config.pg).toMatchObject({
      host: 'db.internal',
      port: 6543,
      user: 'backup',
      password: 'pw-from-the-scripts',
      database: 'recommend',
    });
    expect(config.databases).toEqual(['recommend']);
    expect(config.storage).toEqual({ kind: 'local', dir: '/srv/backups' });
    expect(config.slackWebhookUrl).toBe(specEnv.SLACK_WEBHOOK);
    expect(config.backup.retentionDays).toBe(14);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('S3_BUCKET is the S3 store, under the backups/ prefix backup.sh uploaded to', () => {
    const { config } = load({ S3_BUCKET: 'team-backups' });
    expect(config.storage).toMatchObject({ kind: 's3', bucket: 'team-backups', prefix: 'backups' });
    expect(config.source.DBOPS_S3_BUCKET).toBe('S3_BUCKET');
  });

  it('a POSTGRES_PASSWORD-only setup reaches pg_dump and psql as PGPASSWORD, and nothing named POSTGRES_*', () => {
    const { config } = load({ POSTGRES_PASSWORD: 'pw-from-the-scripts' });
    const child = pgChildEnv(config.pg);
    expect(child.PGPASSWORD).toBe('pw-from-the-scripts');
    expect(Object.keys(child).filter((k) => k.startsWith('POSTGRES_'))).toEqual([]);
  });

  it('each alias in use is warned about, naming it and the dbops variable', () => {
    const { warnings } = load({ POSTGRES_HOST: 'db.internal', RETENTION_DAYS: '14' });
    expect(warnings).toEqual([
      'POSTGRES_HOST is the backup.sh/restore.sh name: set PGHOST instead (read from POSTGRES_HOST for now)',
      'RETENTION_DAYS is the backup.sh name: set DBOPS_RETENTION_DAYS instead (read from RETENTION_DAYS for now)',
    ]);
    expect(load({}).warnings).toEqual([]);
  });

  it('the spec variables dbops does not read are warned about with what to set instead', () => {
    const { warnings } = load({ DRY_RUN: 'true', MILVUS_HOST: 'milvus' });
    expect(warnings).toEqual([
      expect.stringMatching(/^DRY_RUN .*dbops restore start --dry-run/),
      expect.stringMatching(/^MILVUS_HOST .*DBOPS_MILVUS_ADDRESS=host:port/),
    ]);
  });

  it('warns once a process, on stderr, however often the config is loaded', () => {
    const written: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    const env = { ...base, POSTGRES_USER: 'backup-once-test' };
    loadConfig(env);
    loadConfig(env);
    loadConfig({ ...env, POSTGRES_HOST: 'db.internal' });
    expect(written).toEqual([
      'dbops: warning: POSTGRES_USER is the backup.sh/restore.sh name: set PGUSER instead (read from POSTGRES_USER for now)\n',
      'dbops: warning: POSTGRES_HOST is the backup.sh/restore.sh name: set PGHOST instead (read from POSTGRES_HOST for now)\n',
    ]);
    const lines: string[] = [];
    const warn = onceEach((line) => lines.push(line));
    warn('a');
    warn('a');
    warn('b');
    expect(lines).toEqual(['a', 'b']);
  });

  it('both set to the same value: fine, the dbops variable is the source, still warned', () => {
    const { config, warnings } = load({ PGHOST: 'db.internal', POSTGRES_HOST: 'db.internal' });
    expect(config.pg.host).toBe('db.internal');
    expect(config.source.PGHOST).toBe('env');
    expect(warnings).toEqual([expect.stringContaining('set PGHOST instead')]);
  });

  it('both set to different values: a config error naming both (with the values)', () => {
    const err = configError({
      PGHOST: 'db-a',
      POSTGRES_HOST: 'db-b',
      PGPORT: '55432',
      POSTGRES_PORT: '55433',
    });
    expect(err.problems).toEqual([
      expect.stringMatching(
        /^PGHOST and POSTGRES_HOST .*different values \("db-a" and "db-b"\): unset POSTGRES_HOST/,
      ),
      expect.stringMatching(/^PGPORT and POSTGRES_PORT .*\("55432" and "55433"\)/),
    ]);
  });

  it('secrets in conflict are named, never printed', () => {
    const err = configError({
      PGPASSWORD: 'first-secret',
      POSTGRES_PASSWORD: 'second-secret',
      DBOPS_SLACK_WEBHOOK_URL: 'https://hooks.example/one-secret',
      SLACK_WEBHOOK: 'https://hooks.example/two-secret',
    });
    expect(err.problems).toEqual([
      expect.stringMatching(/^PGPASSWORD and POSTGRES_PASSWORD .*different values: unset POSTGRES_PASSWORD/),
      expect.stringMatching(/^DBOPS_SLACK_WEBHOOK_URL and SLACK_WEBHOOK /),
    ]);
    expect(err.message).not.toMatch(/secret/);
  });

  it('a value given by DATABASE_URL conflicts too, without printing the URL', () => {
    const err = configError({
      DATABASE_URL: 'postgres://u:hunter2@db-a:55432/app',
      POSTGRES_HOST: 'db-b',
    });
    expect(err.problems).toEqual([expect.stringMatching(/^DATABASE_URL and POSTGRES_HOST /)]);
    expect(err.message).not.toMatch(/hunter2|db-a/);
  });

  it('a bad value names the alias it came from (a secret one redacted)', () => {
    const err = configError({ POSTGRES_PORT: 'abc', SLACK_WEBHOOK: 'not-a-url-secret' });
    expect(err.problems).toEqual([
      expect.stringMatching(/^POSTGRES_PORT \(read for PGPORT\)="abc": must be a port number/),
      expect.stringMatching(/^SLACK_WEBHOOK \(read for DBOPS_SLACK_WEBHOOK_URL\)=<redacted>/),
    ]);
    expect(err.message).not.toMatch(/not-a-url-secret/);
  });

  it('the secret aliases are secrets (never printed, scrubbed from logs)', () => {
    expect(SECRET_VARIABLES.has('POSTGRES_PASSWORD')).toBe(true);
    expect(SECRET_VARIABLES.has('SLACK_WEBHOOK')).toBe(true);
    expect(SECRET_VARIABLES.has('POSTGRES_HOST')).toBe(false);
  });

  it('`dbops config` shows the alias as the source, and no secret value', () => {
    const { config } = load(specEnv);
    const rows = Object.fromEntries(describeConfig(config, {}).map((r) => [r.name, r]));
    expect(rows.PGHOST).toEqual({ name: 'PGHOST', value: 'db.internal', source: 'POSTGRES_HOST' });
    expect(rows.PGPASSWORD).toEqual({ name: 'PGPASSWORD', value: '<redacted>', source: 'POSTGRES_PASSWORD' });
    expect(rows.DBOPS_DATABASES).toMatchObject({ value: 'recommend', source: 'POSTGRES_DB' });
    expect(rows.DBOPS_BACKUP_DIR).toMatchObject({ value: '/srv/backups', source: 'BACKUP_DIR' });
    expect(rows.DBOPS_SLACK_WEBHOOK_URL).toEqual({
      name: 'DBOPS_SLACK_WEBHOOK_URL',
      value: '<redacted>',
      source: 'SLACK_WEBHOOK',
    });
    expect(rows.DBOPS_RETENTION_DAYS).toMatchObject({ value: '14', source: 'RETENTION_DAYS' });
    expect(JSON.stringify(rows)).not.toMatch(/pw-from-the-scripts|secret-part/);
  });

  it('README’s “Coming from the scripts” lists every alias with its dbops variable', () => {
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const section = /Coming from the scripts[\s\S]*?(?=\n#)/.exec(readme)?.[0] ?? '';
    for (const [alias, { variable }] of Object.entries(VARIABLE_ALIASES)) {
      expect(section, alias).toContain(`\`${alias}\`→\`${variable}\``);
    }
    for (const name of Object.keys(UNREAD_SPEC_VARIABLES)) expect(section, name).toContain(`\`${name}\``);
  });
});
