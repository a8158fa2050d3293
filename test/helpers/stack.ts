import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createBackupStore, type BackupStore } from '../../activities/storage';
import { loadConfig, REPO_ROOT, type Config } from '../../src/config';

/** The running dev stack's settings (written by `npm run stack -- up`). */
export function stackVars(): Record<string, string> {
  const home = process.env.DBOPS_STACK_HOME || path.join(REPO_ROOT, '.stack');
  const file = path.join(home, 'stack.env.json');
  if (!existsSync(file)) throw new Error(`dev stack not running (${file} missing): run npm run stack -- up`);
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
}

/** What test/global-setup.ts made for this run: its Temporal namespace, backup folder and S3 prefix. */
export interface TestRun {
  namespace: string;
  backupDir: string;
  s3Prefix: string;
}

export function testRun(): TestRun {
  const namespace = process.env.DBOPS_TEST_NAMESPACE;
  const backupDir = process.env.DBOPS_TEST_BACKUP_DIR;
  const s3Prefix = process.env.DBOPS_TEST_S3_PREFIX;
  if (!namespace || !backupDir || !s3Prefix) {
    throw new Error(
      'this test run has no namespace of its own (DBOPS_TEST_NAMESPACE unset): run tests through vitest (npm test), whose globalSetup creates it',
    );
  }
  return { namespace, backupDir, s3Prefix };
}

/**
 * A config for tests: the dev stack's servers, the run's own namespace and backup folder, plus
 * `overrides`. Storage defaults to a local folder unless the test sets DBOPS_STORAGE=s3. Never
 * inherits the developer's DBOPS_* shell settings, so nothing lands in the user's `default`
 * namespace or `.stack/backups`.
 */
export function testConfig(overrides: Record<string, string | undefined> = {}): Config {
  return loadConfig({
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...stackServerEnv(),
    DBOPS_TEMPORAL_NAMESPACE: testRun().namespace,
    DBOPS_BACKUP_DIR: testRun().backupDir,
    ...overrides,
  });
}

/** The dev stack's servers (PostgreSQL and its tools, Temporal, Milvus) as dbops reads them from its environment. */
export function stackServerEnv(): Record<string, string | undefined> {
  const vars = stackVars();
  return {
    DBOPS_STACK_HOME: vars.DBOPS_STACK_HOME,
    PGHOST: vars.PGHOST,
    PGPORT: vars.PGPORT,
    PGUSER: vars.PGUSER,
    PGDATABASE: vars.PGDATABASE,
    DBOPS_PG_BIN_DIR: vars.DBOPS_PG_BIN_DIR,
    DBOPS_TEMPORAL_ADDRESS: vars.DBOPS_TEMPORAL_ADDRESS,
    DBOPS_TEMPORAL_UI_URL: vars.DBOPS_TEMPORAL_UI_URL,
    DBOPS_MILVUS_ADDRESS: vars.DBOPS_MILVUS_ADDRESS,
  };
}

/** The AWS SDK reads credentials from the process environment: the dev stack's versitygw keys. */
function useStackS3Credentials(vars: Record<string, string>): void {
  process.env.AWS_ACCESS_KEY_ID = vars.AWS_ACCESS_KEY_ID;
  process.env.AWS_SECRET_ACCESS_KEY = vars.AWS_SECRET_ACCESS_KEY;
  process.env.AWS_REGION = vars.AWS_REGION ?? 'us-east-1';
}

/**
 * The dev stack's bucket as a store rooted at `prefix` ('' for the whole bucket): for the run's own
 * setup and teardown and for the isolation snapshot, which look beyond one test's prefix.
 */
export function stackBucket(prefix: string): BackupStore {
  const vars = stackVars();
  useStackS3Credentials(vars);
  return createBackupStore(
    loadConfig({
      DBOPS_STACK_HOME: vars.DBOPS_STACK_HOME,
      DBOPS_STORAGE: 's3',
      DBOPS_S3_BUCKET: vars.DBOPS_S3_BUCKET,
      DBOPS_S3_ENDPOINT: vars.DBOPS_S3_ENDPOINT,
      DBOPS_S3_PREFIX: prefix,
    }).storage,
  );
}

/** S3 settings of the dev stack's versitygw, under the run's own prefix (removed at the end of the run). */
export function s3Overrides(prefix: string): Record<string, string> {
  const vars = stackVars();
  useStackS3Credentials(vars);
  return {
    DBOPS_STORAGE: 's3',
    DBOPS_S3_BUCKET: vars.DBOPS_S3_BUCKET!,
    DBOPS_S3_ENDPOINT: vars.DBOPS_S3_ENDPOINT!,
    DBOPS_S3_PREFIX: `${testRun().s3Prefix}/${prefix}`,
  };
}

/** A short unique suffix for names (databases, task queues, collections, prefixes). */
export function uniqueSuffix(): string {
  return `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}
