import type { Client } from 'pg';
import { failure, FailureType } from '../../../common/failures';
import { quoteIdent, type PgConnectionSettings } from '../connection';
import { readFlywaySettings } from './config-file';
import { resolveMigrations, type ResolvedMigration } from './files';
import {
  createHistorySql,
  historyExists,
  insertHistory,
  qualified,
  readHistory,
  schemaExists,
  type HistoryTable,
} from './history';
import { acquireMigrationLock, flywayLockKey, releaseMigrationLock } from './lock';
import { describeSqlError, openSession, prepareMigrationSession } from './session';
import { splitStatements } from './split';
import { computeState, validationErrors, type MigrationInfo, type SchemaState } from './state';
import { parseVersion } from './version';

export interface MigratorOptions {
  readonly pg: PgConnectionSettings;
  readonly database: string;
  /** Folder holding flyway.conf and (by default) the migrations. */
  readonly dir: string;
  readonly lockTimeoutMs: number;
  readonly statementTimeoutMs: number;
  /** How long to wait for another migrator's lock (default 15 min). */
  readonly lockWaitMs?: number;
  readonly onProgress?: (event: MigrationProgress) => void;
  /** Aborting cancels the running statement; the migration rolls back (or is recorded failed). */
  readonly signal?: AbortSignal;
}

export type MigrationProgress =
  | { phase: 'waiting-for-lock'; waitedMs: number }
  | { phase: 'applying'; version: string; script: string; index: number; total: number }
  | { phase: 'applied'; version: string; script: string; executionTimeMs: number };

export interface AppliedMigration {
  readonly version: string;
  readonly description: string;
  readonly script: string;
  readonly executionTimeMs: number;
}

/** JSON-serializable result of `migrate`. */
export interface MigrateSummary {
  readonly database: string;
  readonly schema: string;
  readonly dryRun: boolean;
  readonly initialVersion: string | null;
  readonly finalVersion: string | null;
  /** Applied (or, in a dry run, would apply). */
  readonly migrations: AppliedMigration[];
  readonly totalMs: number;
}

export interface Context {
  readonly table: HistoryTable;
  readonly schemas: readonly string[];
  readonly resolved: ResolvedMigration[];
}

function context(dir: string): Context {
  const settings = readFlywaySettings(dir);
  return {
    table: { schema: settings.schemas[0]!, table: settings.table },
    schemas: settings.schemas,
    resolved: resolveMigrations(settings.locations),
  };
}

export async function withSession<T>(
  opts: MigratorOptions,
  fn: (client: Client, ctx: Context) => Promise<T>,
): Promise<T> {
  const ctx = context(opts.dir);
  const client = await openSession(opts.pg, opts.database, 'dbops-migrate');
  try {
    return await fn(client, ctx);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Runs `fn` holding the migration lock, which lives on its own idle session. */
export async function withLock<T>(opts: MigratorOptions, ctx: Context, fn: () => Promise<T>): Promise<T> {
  const lockClient = await openSession(opts.pg, opts.database, 'dbops-migrate-lock');
  const key = flywayLockKey(ctx.table.schema, ctx.table.table);
  try {
    await acquireMigrationLock(lockClient, key, opts.lockWaitMs ?? 15 * 60_000, (waitedMs) =>
      opts.onProgress?.({ phase: 'waiting-for-lock', waitedMs }),
    );
    try {
      return await fn();
    } finally {
      await releaseMigrationLock(lockClient, key).catch(() => undefined);
    }
  } finally {
    await lockClient.end().catch(() => undefined);
  }
}

async function loadState(client: Client, ctx: Context): Promise<SchemaState> {
  return computeState(ctx.resolved, await readHistory(client, ctx.table));
}

function invalid(database: string, errors: string[]) {
  return failure(
    FailureType.MigrationInvalid,
    `migrations of database ${database} do not validate:\n  - ${errors.join('\n  - ')}`,
    { errors },
  );
}

/** Fails like Flyway when a non-empty schema has no history: that database needs a baseline. */
async function assertEmptyOrManaged(client: Client, ctx: Context, database: string): Promise<void> {
  if (await historyExists(client, ctx.table)) return;
  const r = await client.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r','p','v','m','S','f')`,
    [ctx.table.schema],
  );
  if ((r.rows[0]?.n ?? 0) > 0) {
    throw failure(
      FailureType.MigrationInvalid,
      `database ${database}: schema "${ctx.table.schema}" is not empty but has no ${ctx.table.table} table: run \`dbops baseline --version <the version it is at>\` first`,
    );
  }
}

/** Creates missing schemas (recorded as Flyway does, rank 0) and the history table. */
async function ensureHistory(client: Client, ctx: Context): Promise<void> {
  if (await historyExists(client, ctx.table)) return;
  await client.query('BEGIN');
  try {
    const missing: string[] = [];
    for (const schema of ctx.schemas) if (!(await schemaExists(client, schema))) missing.push(schema);
    for (const schema of missing) await client.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
    await client.query(createHistorySql(ctx.table));
    if (missing.length) {
      await insertHistory(client, ctx.table, {
        rank: 0,
        version: null,
        description: '<< Flyway Schema Creation >>',
        type: 'SCHEMA',
        script: missing.map((s) => `"${s}"`).join(','),
        checksum: null,
        executionTime: 0,
        success: true,
      });
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

async function applyOne(
  client: Client,
  ctx: Context,
  m: ResolvedMigration,
  database: string,
): Promise<number> {
  const started = Date.now();
  const elapsed = () => Date.now() - started;
  const record = (success: boolean) =>
    insertHistory(client, ctx.table, {
      version: m.version.text,
      description: m.description,
      type: 'SQL',
      script: m.script,
      checksum: m.checksum,
      executionTime: elapsed(),
      success,
    });
  if (m.executeInTransaction) {
    await client.query('BEGIN');
    try {
      await client.query(m.sql);
      const ms = elapsed();
      await record(true);
      await client.query('COMMIT');
      return ms;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      // PostgreSQL rolls DDL back, so (like Flyway) nothing is recorded: fix the file and rerun.
      throw failure(
        FailureType.MigrationFailed,
        `migration ${m.script} failed on database ${database} and was rolled back: ${describeSqlError(err, m.sql, m.file)}. Fix the file and run migrate again`,
      );
    }
  }
  let offset = 0;
  for (const statement of splitStatements(m.sql)) {
    offset = m.sql.indexOf(statement, offset);
    try {
      await client.query(statement);
    } catch (err) {
      await record(false).catch(() => undefined);
      throw failure(
        FailureType.MigrationFailed,
        `non-transactional migration ${m.script} failed on database ${database} and is recorded as failed: ${describeSqlError(err, m.sql, m.file, offset)}. Undo its half-applied changes (or make it idempotent), fix the file, then run repair and migrate`,
      );
    }
  }
  const ms = elapsed();
  await record(true);
  return ms;
}

/** Applies pending migrations in version order, one at a time under the migration lock. */
export async function migrate(opts: MigratorOptions, dryRun = false): Promise<MigrateSummary> {
  const started = Date.now();
  return withSession(opts, async (client, ctx) => {
    const summary = (initial: string | null, final: string | null, migrations: AppliedMigration[]) => ({
      database: opts.database,
      schema: ctx.table.schema,
      dryRun,
      initialVersion: initial,
      finalVersion: final,
      migrations,
      totalMs: Date.now() - started,
    });
    if (dryRun) {
      await assertEmptyOrManaged(client, ctx, opts.database);
      const state = await loadState(client, ctx);
      if (state.errors.length) throw invalid(opts.database, state.errors);
      const would = state.pending.map((m) => ({ ...describe(m), executionTimeMs: 0 }));
      return summary(state.currentVersion, would.at(-1)?.version ?? state.currentVersion, would);
    }
    await prepareMigrationSession(client, { ...opts, schema: ctx.table.schema });
    const cancel = () => void cancelBackend(opts, (client as unknown as { processID?: number }).processID);
    opts.signal?.addEventListener('abort', cancel, { once: true });
    try {
      return await withLock(opts, ctx, async () => {
        await assertEmptyOrManaged(client, ctx, opts.database);
        await ensureHistory(client, ctx);
        const state = await loadState(client, ctx);
        if (state.errors.length) throw invalid(opts.database, state.errors);
        const applied: AppliedMigration[] = [];
        for (const [index, m] of state.pending.entries()) {
          if (opts.signal?.aborted) break;
          opts.onProgress?.({
            phase: 'applying',
            version: m.version.text,
            script: m.script,
            index,
            total: state.pending.length,
          });
          const executionTimeMs = await applyOne(client, ctx, m, opts.database);
          applied.push({ ...describe(m), executionTimeMs });
          opts.onProgress?.({ phase: 'applied', version: m.version.text, script: m.script, executionTimeMs });
        }
        return summary(state.currentVersion, applied.at(-1)?.version ?? state.currentVersion, applied);
      });
    } finally {
      opts.signal?.removeEventListener('abort', cancel);
    }
  });
}

function describe(m: ResolvedMigration) {
  return { version: m.version.text, description: m.description, script: m.script };
}

async function cancelBackend(opts: MigratorOptions, pid: number | undefined): Promise<void> {
  if (!pid) return;
  const c = await openSession(opts.pg, opts.database, 'dbops-migrate-cancel').catch(() => undefined);
  if (!c) return;
  await c.query('SELECT pg_cancel_backend($1)', [pid]).catch(() => undefined);
  await c.end().catch(() => undefined);
}

export async function info(
  opts: MigratorOptions,
): Promise<{ currentVersion: string | null; migrations: MigrationInfo[] }> {
  return withSession(opts, async (client, ctx) => {
    const state = await loadState(client, ctx);
    return { currentVersion: state.currentVersion, migrations: state.infos };
  });
}

export interface ValidateResult {
  readonly database: string;
  readonly valid: boolean;
  readonly errors: string[];
}

export async function validate(opts: MigratorOptions): Promise<ValidateResult> {
  return withSession(opts, async (client, ctx) => {
    const errors = validationErrors(await loadState(client, ctx));
    return { database: opts.database, valid: errors.length === 0, errors };
  });
}

export interface RepairResult {
  readonly database: string;
  readonly removedFailed: string[];
  readonly realigned: string[];
  readonly markedDeleted: string[];
}

/** As Flyway CE: removes failed rows, realigns checksums/descriptions, marks missing migrations deleted. */
export async function repair(opts: MigratorOptions): Promise<RepairResult> {
  return withSession(opts, (client, ctx) =>
    withLock(opts, ctx, async () => {
      const result: RepairResult = {
        database: opts.database,
        removedFailed: [],
        realigned: [],
        markedDeleted: [],
      };
      if (!(await historyExists(client, ctx.table))) return result;
      const t = qualified(ctx.table);
      await client.query('BEGIN');
      try {
        const failed = await client.query<{ script: string }>(
          `DELETE FROM ${t} WHERE NOT success RETURNING script`,
        );
        result.removedFailed.push(...failed.rows.map((r) => r.script));
        const state = await loadState(client, ctx);
        for (const info of state.infos) {
          const file = ctx.resolved.find((m) => m.version.text === info.version || sameText(m, info.version));
          if (info.state === 'Success' && info.type === 'SQL' && file) {
            if (info.appliedChecksum !== file.checksum || info.description !== file.description) {
              await client.query(
                `UPDATE ${t} SET checksum = $1, description = $2, script = $3 WHERE version = $4 AND type = 'SQL' AND success`,
                [file.checksum, file.description, file.script, info.version],
              );
              result.realigned.push(file.script);
            }
          } else if (info.state === 'Missing') {
            await insertHistory(client, ctx.table, {
              version: info.version,
              description: info.description,
              type: 'DELETE',
              script: info.script,
              checksum: info.appliedChecksum,
              executionTime: 0,
              success: true,
            });
            result.markedDeleted.push(info.script);
          }
        }
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
      return result;
    }),
  );
}

function sameText(m: ResolvedMigration, version: string): boolean {
  const v = parseVersion(version);
  return v !== undefined && v.parts.join('.') === m.version.parts.join('.');
}

/** Records an existing database as being at `version`; migrations up to it are then skipped. */
export async function baseline(
  opts: MigratorOptions,
  version: string,
  description = '<< Flyway Baseline >>',
) {
  const v = parseVersion(version);
  if (!v)
    throw failure(FailureType.InvalidInput, `baseline version "${version}" is not a version like 3 or 1.2`);
  return withSession(opts, (client, ctx) =>
    withLock(opts, ctx, async () => {
      const history = await readHistory(client, ctx.table);
      if (history.some((r) => r.type !== 'SCHEMA')) {
        throw failure(
          FailureType.Refused,
          `database ${opts.database} already has a migration history (${history.length} rows in ${ctx.table.table}); baseline is only for a database without one`,
        );
      }
      await ensureHistory(client, ctx);
      await insertHistory(client, ctx.table, {
        version: v.text,
        description,
        type: 'BASELINE',
        script: description,
        checksum: null,
        executionTime: 0,
        success: true,
      });
      return { database: opts.database, baselineVersion: v.text };
    }),
  );
}
