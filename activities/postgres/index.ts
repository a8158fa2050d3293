import type { PgConnectionSettings } from './connection';
import { createLifecycleActivities } from './lifecycle';
import { createMigrationActivities, migrateFn, type MigrationSettings } from './migrate';

/**
 * PostgreSQL activities, in three factories by what they need and where they run:
 * - createPostgresActivities: database lifecycle, partitions, cleanup and migrations (a connection
 *   is all they need); the partition-maintenance workflow proxies LifecycleActivities.
 * - createRestoreActivities (restore/): restore, verification, cut-over and rollback; they read the
 *   backup store too.
 * - createDumpActivities (dump/): pg_dump into the store and the re-read check; they run on the
 *   `<taskQueue>-dumps` worker, which limits how many run at once (src/worker/activities.ts).
 */
export interface PostgresDeps {
  readonly pg: PgConnectionSettings;
  /** Migrations folder and session timeouts; without it migrateDatabase/initDatabase fail clearly. */
  readonly migrations?: MigrationSettings;
}

export function createPostgresActivities(deps: PostgresDeps) {
  return {
    ...createLifecycleActivities({
      pg: deps.pg,
      migrate: deps.migrations && migrateFn({ pg: deps.pg, migrations: deps.migrations }),
    }),
    ...createMigrationActivities({ pg: deps.pg, migrations: deps.migrations ?? missingMigrations }),
  };
}

/** Used when a worker is built without migration settings: every path fails with the fix. */
const missingMigrations: MigrationSettings = {
  dir: '(DBOPS_MIGRATIONS_DIR not configured)',
  lockTimeoutMs: 10_000,
  statementTimeoutMs: 0,
};

export type PostgresActivities = ReturnType<typeof createPostgresActivities>;

export { createRestoreActivities, type RestoreActivities, type RestoreDeps } from './restore';
export { createDumpActivities, type DumpActivities } from './dump';
