import type { PgConnectionSettings } from './postgres/connection';

/**
 * PostgreSQL activities. Each area (migrations, dump, restore, partitions, ...) lives in its own
 * module under activities/postgres/ and is spread in here; workflows proxy PostgresActivities.
 */
export interface PostgresDeps {
  readonly pg: PgConnectionSettings;
}

export function createPostgresActivities(deps: PostgresDeps) {
  void deps;
  return {};
}

export type PostgresActivities = ReturnType<typeof createPostgresActivities>;
