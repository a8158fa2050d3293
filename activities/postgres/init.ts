import { DATABASE_NAME_RULE, isValidDatabaseName } from '../../common/names';
import { FailureType, failure } from '../../common/failures';
import { type PgConnectionSettings, quoteIdent, withPg } from './connection';

/** Extensions the schema needs (V001 pg_trgm, V005 vector); created before migrating so migrations need no superuser. */
export const REQUIRED_EXTENSIONS = ['vector', 'pg_trgm'] as const;

export interface InitStep {
  readonly step: string;
  readonly result: string;
}

export interface InitResult {
  readonly database: string;
  readonly role: string;
  readonly steps: readonly InitStep[];
}

/** Runs the migrations of `database`; returns how many were applied now. */
export type MigrateFn = (database: string) => Promise<{ applied: number; detail?: string }>;

function checkName(kind: string, name: string, flag: string): void {
  if (!isValidDatabaseName(name)) {
    throw failure(
      FailureType.InvalidInput,
      `${kind} name ${JSON.stringify(name)} is not valid: use ${DATABASE_NAME_RULE}; pass another ${flag}`,
    );
  }
}

/**
 * Creates the application role (NOLOGIN, no password: operators give it LOGIN and a password
 * out of band) and the database owned by it if missing, enables the extensions, runs the
 * migrations and grants the role DML on the tables. Idempotent: on an existing database only the
 * migrations (and grants) do anything.
 */
export async function initDatabase(
  settings: PgConnectionSettings,
  input: { database: string; role: string; maintenanceDatabase?: string },
  migrate: MigrateFn,
): Promise<InitResult> {
  checkName('database', input.database, '--database');
  checkName('role', input.role, '--role');
  const db = quoteIdent(input.database);
  const role = quoteIdent(input.role);
  const steps: InitStep[] = [];

  await withPg(settings, input.maintenanceDatabase ?? 'postgres', async (client) => {
    const roleExists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [input.role]);
    if (roleExists.rowCount) {
      steps.push({ step: `role ${input.role}`, result: 'exists' });
    } else {
      await client.query(`CREATE ROLE ${role} NOLOGIN`);
      steps.push({
        step: `role ${input.role}`,
        result: `created (NOLOGIN; an operator sets: ALTER ROLE ${role} LOGIN PASSWORD ...)`,
      });
    }
    const dbExists = await client.query<{ owner: string }>(
      'SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1',
      [input.database],
    );
    if (dbExists.rowCount) {
      steps.push({ step: `database ${input.database}`, result: `exists (owner ${dbExists.rows[0]!.owner})` });
    } else {
      await client.query(`CREATE DATABASE ${db} OWNER ${role} ENCODING 'UTF8' TEMPLATE template0`);
      steps.push({ step: `database ${input.database}`, result: `created (owner ${input.role})` });
    }
  });

  await withPg(settings, input.database, async (client) => {
    for (const ext of REQUIRED_EXTENSIONS) {
      const installed = await client.query<{ v: string }>(
        'SELECT extversion AS v FROM pg_extension WHERE extname = $1',
        [ext],
      );
      if (installed.rowCount) {
        steps.push({ step: `extension ${ext}`, result: `exists (${installed.rows[0]!.v})` });
        continue;
      }
      const available = await client.query('SELECT 1 FROM pg_available_extensions WHERE name = $1', [ext]);
      if (!available.rowCount) {
        throw failure(
          FailureType.Misconfigured,
          `extension ${ext} is not available on the PostgreSQL server of ${input.database}: install it (e.g. the postgresql-NN-pgvector package for vector)`,
        );
      }
      await client.query(`CREATE EXTENSION IF NOT EXISTS ${quoteIdent(ext)}`);
      const v = await client.query<{ v: string }>(
        'SELECT extversion AS v FROM pg_extension WHERE extname = $1',
        [ext],
      );
      steps.push({ step: `extension ${ext}`, result: `created (${v.rows[0]?.v ?? '?'})` });
    }
  });

  const migrated = await migrate(input.database);
  steps.push({
    step: 'migrations',
    result: `applied ${migrated.applied}${migrated.detail ? ` (${migrated.detail})` : ''}`,
  });

  await withPg(settings, input.database, async (client) => {
    await client.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
    await client.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`);
    await client.query(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${role}`);
    await client.query(
      `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${role}`,
    );
    steps.push({ step: `privileges for ${input.role}`, result: 'granted (DML on public tables)' });
  });
  return { database: input.database, role: input.role, steps };
}
