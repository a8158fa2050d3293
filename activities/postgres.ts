import type { PgConnectionSettings } from './postgres/connection';
import { createLifecycleActivities } from './postgres/lifecycle';
import { createMigrationActivities, migrateFn, type MigrationSettings } from './postgres/migrate';

/**
 * PostgreSQL activities. Each area (migrations, dump, restore, partitions, ...) lives in its own
 * module under activities/postgres/ and is spread in here; workflows proxy PostgresActivities.
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

// Dump activities need the backup store too; they run on the `<taskQueue>-dumps` worker (src/worker/activities.ts).
export { createDumpActivities, type DumpActivities } from './postgres/dump';
