import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, REPO_ROOT, type Config } from '../../src/config';

/** The running dev stack's settings (written by `npm run stack -- up`). */
export function stackVars(): Record<string, string> {
  const home = process.env.DBOPS_STACK_HOME || path.join(REPO_ROOT, '.stack');
  const file = path.join(home, 'stack.env.json');
  if (!existsSync(file)) throw new Error(`dev stack not running (${file} missing): run npm run stack -- up`);
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
}

/**
 * A config for tests: the dev stack's servers plus `overrides`. Storage defaults to a local folder
 * unless the test sets DBOPS_STORAGE=s3. Never inherits the developer's DBOPS_* shell settings.
 */
export function testConfig(overrides: Record<string, string | undefined> = {}): Config {
  const vars = stackVars();
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DBOPS_STACK_HOME: vars.DBOPS_STACK_HOME,
    PGHOST: vars.PGHOST,
    PGPORT: vars.PGPORT,
    PGUSER: vars.PGUSER,
    PGDATABASE: vars.PGDATABASE,
    DBOPS_PG_BIN_DIR: vars.DBOPS_PG_BIN_DIR,
    DBOPS_TEMPORAL_ADDRESS: vars.DBOPS_TEMPORAL_ADDRESS,
    DBOPS_TEMPORAL_UI_URL: vars.DBOPS_TEMPORAL_UI_URL,
    DBOPS_MILVUS_ADDRESS: vars.DBOPS_MILVUS_ADDRESS,
    ...overrides,
  };
  return loadConfig(env);
}

/** S3 settings of the dev stack's versitygw, for tests that exercise the S3 store. */
export function s3Overrides(prefix: string): Record<string, string> {
  const vars = stackVars();
  // The AWS SDK reads credentials from the process environment.
  process.env.AWS_ACCESS_KEY_ID = vars.AWS_ACCESS_KEY_ID;
  process.env.AWS_SECRET_ACCESS_KEY = vars.AWS_SECRET_ACCESS_KEY;
  process.env.AWS_REGION = vars.AWS_REGION ?? 'us-east-1';
  return {
    DBOPS_STORAGE: 's3',
    DBOPS_S3_BUCKET: vars.DBOPS_S3_BUCKET!,
    DBOPS_S3_ENDPOINT: vars.DBOPS_S3_ENDPOINT!,
    DBOPS_S3_PREFIX: prefix,
  };
}

/** A short unique suffix for names (databases, task queues, collections, prefixes). */
export function uniqueSuffix(): string {
  return `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}
