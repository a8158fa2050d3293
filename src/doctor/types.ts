import type { Config } from '../config';

export type CheckStatus = 'ok' | 'fail' | 'warn' | 'skip';

export interface CheckResult {
  name: string;
  status: CheckStatus;
  /** Required checks make `dbops doctor` exit non-zero when they fail (a warning never does). */
  required: boolean;
  detail: string;
  hint?: string;
}

export interface CheckContext {
  config: Config;
  /** Server major version, filled by the PostgreSQL check for the client-tools check. */
  serverMajor?: number;
}

/** What a check's run returns: no status means ok; a hint of its own replaces the check's generic one. */
export interface CheckOutcome {
  status?: CheckStatus;
  detail: string;
  hint?: string;
}

export interface Check {
  name: string;
  required: boolean;
  run: (ctx: CheckContext) => Promise<CheckOutcome>;
  hint: (ctx: CheckContext) => string;
}
