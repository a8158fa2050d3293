/** The variables that point tools at the running dev stack (`env`, stack.env.json, stackEnv()). */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { STACK_VARIABLES } from '../config/variables';
import { HOST } from './health';
import { stackPaths, type StackPaths } from './paths';
import { PG_DATABASE, PG_USER, PORTS, S3_ACCESS_KEY, S3_BUCKET, S3_SECRET_KEY } from './servers';

/**
 * What `stack env` exports: the config variables the stack sets (STACK_VARIABLES, the config's own
 * list) and, not dbops settings, the S3 credentials for the AWS SDK's chain and the paths of the
 * tools the tests run.
 */
export const ENV_NAMES = [
  ...(Object.keys(STACK_VARIABLES) as (keyof typeof STACK_VARIABLES)[]),
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_REGION',
  'DBOPS_TEMPORAL_TEST_SERVER',
  'DBOPS_TEMPORAL_CLI',
  'DBOPS_FLYWAY',
] as const;
export type StackEnv = Record<(typeof ENV_NAMES)[number], string>;

export function buildEnv(p: StackPaths, pgBinDir: string): StackEnv {
  return {
    PGHOST: HOST,
    PGPORT: String(PORTS.postgres),
    PGUSER: PG_USER,
    PGDATABASE: PG_DATABASE,
    DBOPS_PG_BIN_DIR: pgBinDir,
    DBOPS_TEMPORAL_ADDRESS: `${HOST}:${PORTS.temporal}`,
    DBOPS_TEMPORAL_UI_URL: `http://${HOST}:${PORTS.temporalUi}`,
    DBOPS_MILVUS_ADDRESS: `${HOST}:${PORTS.milvus}`,
    DBOPS_S3_ENDPOINT: `http://${HOST}:${PORTS.s3}`,
    // versitygw on loopback speaks plain HTTP: the one place dbops accepts an http:// endpoint by default.
    DBOPS_S3_ALLOW_HTTP: 'true',
    DBOPS_S3_BUCKET: S3_BUCKET,
    AWS_ACCESS_KEY_ID: S3_ACCESS_KEY,
    AWS_SECRET_ACCESS_KEY: S3_SECRET_KEY,
    AWS_REGION: 'us-east-1',
    DBOPS_STACK_HOME: p.home,
    DBOPS_TEMPORAL_TEST_SERVER: path.join(p.venvBin, 'temporal-test-server'),
    DBOPS_TEMPORAL_CLI: path.join(p.venvBin, 'temporal'),
    DBOPS_FLYWAY: p.flyway,
    DBOPS_AGE_BIN: p.age,
  };
}

/** POSIX shell quoting: bare when safe, else single quotes. */
export function shellQuote(value: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function exportLines(env: StackEnv): string[] {
  return ENV_NAMES.map((name) => `export ${name}=${shellQuote(env[name])}`);
}

export function writeEnvJson(p: StackPaths, env: StackEnv): void {
  const tmp = `${p.envJson}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(env, null, 2)}\n`);
  renameSync(tmp, p.envJson);
}

export function removeEnvJson(p: StackPaths): void {
  rmSync(p.envJson, { force: true });
}

export function readEnvJson(home: string): StackEnv | undefined {
  try {
    const parsed = JSON.parse(readFileSync(stackPaths(home).envJson, 'utf8')) as Record<string, unknown>;
    const env = {} as StackEnv;
    for (const name of ENV_NAMES) {
      const value = parsed[name];
      if (typeof value !== 'string') return undefined;
      env[name] = value;
    }
    return env;
  } catch {
    return undefined;
  }
}
