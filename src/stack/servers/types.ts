/** What every dev-stack server definition provides, and the stack's fixed ports and names. */
import type { ServerName, StackPaths } from '../paths';

export const PORTS = {
  postgres: 55432,
  temporal: 17233,
  temporalUi: 18233,
  milvus: 19531,
  milvusHealth: 9091,
  milvusEtcd: 2379,
  s3: 19002,
  /** The quickstart's background worker: /healthz, /readyz, /metrics (src/stack/worker.ts). */
  worker: 18090,
} as const;

export const PG_DATABASE = 'recsys';
export const PG_USER = 'postgres';
export const S3_BUCKET = 'dbops-backups';
export const S3_ACCESS_KEY = 'dbopsdev';
export const S3_SECRET_KEY = 'dbopsdevsecret';

export interface ServerContext {
  p: StackPaths;
  root: boolean;
  /** PostgreSQL's bin dir (from the venv install). */
  pgBin(): Promise<string>;
}

export interface ServerDef {
  name: ServerName;
  /** What clients connect to. */
  address: string;
  /** The main port: if something answers there and it is not ours, we do not start. */
  port: number;
  /** Further ports the server needs free (it would silently move to others when they are taken). */
  otherPorts: readonly number[];
  startTimeoutMs: number;
  stopGraceMs: number;
  /** Strings our process's command line contains: guards against a recycled PID. */
  signature(ctx: ServerContext): string[];
  /** Secondary logs worth showing next to the main one. */
  extraLogs(ctx: ServerContext): string[];
  prepare(ctx: ServerContext): Promise<void>;
  /** Starts it without waiting for health; returns its PID. */
  start(ctx: ServerContext): Promise<number>;
  healthy(ctx: ServerContext): Promise<boolean>;
  /** Idempotent setup once healthy (databases, search attributes…). Throws with a reason. */
  afterStart(ctx: ServerContext): Promise<void>;
  /** Our running instance when its PID file is gone (PostgreSQL's own postmaster.pid). */
  adopt(ctx: ServerContext): number | undefined;
  /** Custom stop; returns false to fall back to signals by PID. */
  stop(ctx: ServerContext, pid: number): Promise<boolean>;
}

export const noop = async () => {};
