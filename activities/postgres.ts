import type { PgConnectionSettings } from './postgres/connection';
import { createLifecycleActivities } from './postgres/lifecycle';

/**
 * PostgreSQL activities. Each area (migrations, dump, restore, partitions, ...) lives in its own
 * module under activities/postgres/ and is spread in here; workflows proxy PostgresActivities.
 */
export interface PostgresDeps {
  readonly pg: PgConnectionSettings;
}

export function createPostgresActivities(deps: PostgresDeps) {
  return {
    ...createLifecycleActivities({ pg: deps.pg }),
  };
}

export type PostgresActivities = ReturnType<typeof createPostgresActivities>;
