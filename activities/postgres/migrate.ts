import { Context } from '@temporalio/activity';
import type { PgConnectionSettings } from './connection';
import {
  migrate,
  type MigrateSummary,
  type MigrationProgress,
  type MigratorOptions,
} from './migrations/migrator';

/** Where the migrations are and how migration sessions behave (config.migrations). */
export interface MigrationSettings {
  readonly dir: string;
  readonly lockTimeoutMs: number;
  readonly statementTimeoutMs: number;
}

export interface MigrationDeps {
  readonly pg: PgConnectionSettings;
  readonly migrations: MigrationSettings;
}

const HEARTBEAT_EVERY_MS = 10_000;

export function migratorOptions(deps: MigrationDeps, database: string): MigratorOptions {
  return { pg: deps.pg, database, ...deps.migrations };
}

/** `db init`'s migrate step: applies pending migrations, reports how many. */
export function migrateFn(deps: MigrationDeps, onProgress?: (p: MigrationProgress) => void) {
  return async (database: string) => {
    const s = await migrate({ ...migratorOptions(deps, database), onProgress });
    return { applied: s.migrations.length, detail: `now at version ${s.finalVersion ?? '<none>'}` };
  };
}

export function createMigrationActivities(deps: MigrationDeps) {
  return {
    /**
     * Applies pending migrations under the migration lock (streaming profile). Heartbeats the
     * current step at least every 10 s, also while one long statement runs; cancellation
     * cancels the running statement.
     */
    async migrateDatabase(input: { database: string; dryRun?: boolean }): Promise<MigrateSummary> {
      const ctx = Context.current();
      let last: MigrationProgress | { phase: 'starting' } = { phase: 'starting' };
      ctx.heartbeat(last);
      const timer = setInterval(() => ctx.heartbeat(last), HEARTBEAT_EVERY_MS);
      try {
        return await migrate(
          {
            ...migratorOptions(deps, input.database),
            signal: ctx.cancellationSignal,
            onProgress: (p) => {
              last = p;
              ctx.heartbeat(p);
            },
          },
          Boolean(input.dryRun),
        );
      } finally {
        clearInterval(timer);
      }
    },
  };
}
