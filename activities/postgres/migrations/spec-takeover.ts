import type { Client } from 'pg';
import { failure, FailureType } from '../../../common/failures';
import type { ResolvedMigration } from './files';
import { insertHistory, qualified, readHistory, type HistoryRow } from './history';
import {
  migrate,
  withLock,
  withSession,
  type Context,
  type MigrateSummary,
  type MigratorOptions,
} from './migrator';
import { prepareMigrationSession } from './session';
import {
  DBOPS_V002_ADDITIONS,
  DEFAULT_PARTITION,
  SPEC_ONLY_DROPS,
  SPEC_PARTITION_TRIGGER_FUNCTION,
  SPEC_SCRIPTS,
  TAKEOVER_ROW,
  type SpecScript,
} from './spec-schema';
import { splitStatements } from './split';
import { computeState } from './state';
import { parseVersion } from './version';

/** What `migrate --adopt-spec-schema` did (or, in a dry run, would do) before migrating. */
export interface TakeoverResult {
  readonly database: string;
  readonly dryRun: boolean;
  /** `already-taken-over`: an earlier run did it (takenOverOn); nothing was changed. */
  readonly status: 'taken-over' | 'would-take-over' | 'already-taken-over';
  readonly takenOverOn: string | null;
  /** The statements run (or to run), one line each. */
  readonly statements: string[];
  /** History rows realigned to dbops' files, e.g. "001: checksum -631856383 -> -1864311120". */
  readonly historyChanges: string[];
  readonly executionTimeMs: number;
}

const sameVersion = (a: string | null, b: string) =>
  a !== null && parseVersion(a)?.parts.join('.') === parseVersion(b)?.parts.join('.');

const isTakeoverRow = (r: HistoryRow) =>
  r.type === TAKEOVER_ROW.type && sameVersion(r.version, TAKEOVER_ROW.version);

const RECONCILE =
  "compare its schema with the spec's V001/V002 and dbops' migrations/, reconcile it by hand and then run `dbops repair`";

/** Why the history is not the spec's V001/V002 as Flyway recorded them, each with its fix (empty when it is). */
function historyProblems(history: readonly HistoryRow[]): string[] {
  const rows = history.filter((r) => r.type !== 'SCHEMA');
  if (!rows.length) {
    return [
      'it has no Flyway history (flyway_schema_history is missing or empty): for an empty database run `dbops migrate`; for one built by hand, `dbops baseline`',
    ];
  }
  if (
    SPEC_SCRIPTS.every((s) =>
      rows.some((r) => sameVersion(r.version, s.version) && r.checksum === s.dbopsChecksum),
    )
  ) {
    return [
      "its V001/V002 are dbops' own (their checksums are dbops' files'): nothing to take over, run `dbops migrate`",
    ];
  }
  const problems: string[] = [];
  for (const spec of SPEC_SCRIPTS) {
    const row = rows.find((r) => sameVersion(r.version, spec.version));
    const name = `V${spec.version} (${spec.script})`;
    const setRow = (column: string, value: string) =>
      `if only that differs and the schema is the spec's, run UPDATE flyway_schema_history SET ${column} = ${value} WHERE installed_rank = ${row?.installedRank} and rerun; otherwise ${RECONCILE}`;
    if (!row) problems.push(`it has no history row for the spec's ${name}: ${RECONCILE}`);
    else if (!row.success)
      problems.push(`${name} is recorded as failed (installed_rank ${row.installedRank}): ${RECONCILE}`);
    else if (row.type !== 'SQL')
      problems.push(`${name} has type ${row.type}, the spec's Flyway run wrote SQL: ${RECONCILE}`);
    else {
      if (row.description !== spec.description)
        problems.push(
          `${name} has description "${row.description}", the spec's is "${spec.description}": ${setRow('description', `'${spec.description}'`)}`,
        );
      if (row.checksum !== spec.specChecksum)
        problems.push(
          `${name} has checksum ${row.checksum}, the spec's script as given has ${spec.specChecksum}, so a changed script built it: ${setRow('checksum', String(spec.specChecksum))}`,
        );
    }
  }
  for (const row of rows.filter((r) => !SPEC_SCRIPTS.some((s) => sameVersion(r.version, s.version)))) {
    problems.push(
      `history row ${row.installedRank} (version ${row.version ?? '<none>'} "${row.description}", type ${row.type}) is not one of the spec's V001/V002, which are all this command takes over: ${RECONCILE}`,
    );
  }
  return problems;
}

function refuse(database: string, problems: string[]) {
  return failure(
    FailureType.Refused,
    `database ${database} is not a database the spec's migrations built, so --adopt-spec-schema changes nothing:\n  - ${problems.join('\n  - ')}`,
    { problems },
  );
}

/** dbops' V001/V002 in the migrations folder, checked to be the released files the takeover knows. */
function dbopsFiles(ctx: Context, opts: MigratorOptions): Map<SpecScript, ResolvedMigration> {
  const files = new Map<SpecScript, ResolvedMigration>();
  for (const spec of SPEC_SCRIPTS) {
    const file = ctx.resolved.find((m) => sameVersion(m.version.text, spec.version));
    if (!file || file.checksum !== spec.dbopsChecksum || file.description !== spec.description) {
      throw failure(
        FailureType.Misconfigured,
        `--adopt-spec-schema brings a spec database to dbops' released ${spec.script} (checksum ${spec.dbopsChecksum}), but ${opts.dir} has ${file ? `${file.file} with checksum ${file.checksum}` : 'no V' + spec.version}: point DBOPS_MIGRATIONS_DIR at dbops' migrations/ folder`,
      );
    }
    files.set(spec, file);
  }
  return files;
}

const withoutLeadingComments = (statement: string) => statement.replace(/^(\s*--[^\n]*\n)+/, '').trim();

/** The statements of dbops' V002 the spec lacks, in file order (see DBOPS_V002_ADDITIONS). */
function v002Additions(v002: ResolvedMigration): string[] {
  const statements = splitStatements(v002.sql).map(withoutLeadingComments);
  return DBOPS_V002_ADDITIONS.map((pattern) => {
    const found = statements.filter((s) => pattern.test(s));
    if (found.length !== 1) {
      throw failure(
        FailureType.Misconfigured,
        `${v002.file}: expected one statement matching ${pattern}, found ${found.length}: use dbops' released migrations/ folder`,
      );
    }
    return found[0]!;
  });
}

/** Schema facts the takeover's statements rely on; refuses with the fix when one does not hold. */
async function schemaProblems(
  client: Client,
  schema: string,
): Promise<{ problems: string[]; hasDefault: boolean }> {
  const r = await client.query<{ kind: string | null; default_partition: string | null; triggers: string[] }>(
    `SELECT (SELECT c.relkind::text FROM pg_class c WHERE c.oid = to_regclass(format('%I.user_behaviors', $1::text))) AS kind,
            (SELECT d.relname::text FROM pg_partitioned_table p JOIN pg_class d ON d.oid = p.partdefid
              WHERE p.partrelid = to_regclass(format('%I.user_behaviors', $1::text))) AS default_partition,
            ARRAY(SELECT format('%s ON %s', t.tgname, t.tgrelid::regclass) FROM pg_trigger t
                   WHERE t.tgfoid = to_regprocedure(format('%I.%s', $1::text, $2::text))) AS triggers`,
    [schema, SPEC_PARTITION_TRIGGER_FUNCTION],
  );
  const row = r.rows[0]!;
  const problems: string[] = [];
  if (row.kind !== 'p')
    problems.push(`${schema}.user_behaviors is not a partitioned table (the spec's V002 makes one)`);
  if (row.default_partition && row.default_partition !== DEFAULT_PARTITION) {
    problems.push(
      `user_behaviors already has a DEFAULT partition ${row.default_partition}: rename it to ${DEFAULT_PARTITION} (ALTER TABLE ... RENAME TO) and rerun`,
    );
  }
  for (const t of row.triggers) {
    problems.push(
      `trigger ${t} still uses ${SPEC_PARTITION_TRIGGER_FUNCTION}, which dbops drops: drop the trigger (DROP TRIGGER ${t}); dbops creates partitions ahead with ensure_behavior_partitions()`,
    );
  }
  return { problems, hasDefault: row.default_partition === DEFAULT_PARTITION };
}

const firstLine = (statement: string) => statement.split('\n')[0]!.trim();

/**
 * Takes over a database the spec's V001/V002 built: in one transaction under the migration lock,
 * drops the spec-only objects, adds what dbops' V002 has beyond the spec's, realigns the two
 * history rows' checksums to dbops' files and records a BASELINE row saying so. Idempotent.
 */
export async function takeOverSpecSchema(opts: MigratorOptions, dryRun = false): Promise<TakeoverResult> {
  const started = Date.now();
  return withSession(opts, async (client, ctx) => {
    const result = (
      status: TakeoverResult['status'],
      extra: Partial<TakeoverResult> = {},
    ): TakeoverResult => ({
      database: opts.database,
      dryRun,
      status,
      takenOverOn: null,
      statements: [],
      historyChanges: [],
      executionTimeMs: Date.now() - started,
      ...extra,
    });
    const files = dbopsFiles(ctx, opts);
    const plan = async (history: HistoryRow[]) => {
      const done = history.find(isTakeoverRow);
      if (done) return { done };
      const problems = historyProblems(history);
      const schema = problems.length
        ? { problems: [], hasDefault: false }
        : await schemaProblems(client, ctx.table.schema);
      if (problems.length || schema.problems.length)
        throw refuse(opts.database, [...problems, ...schema.problems]);
      // a DEFAULT partition of dbops' name made by hand is kept: the rest still applies
      const additions = v002Additions(files.get(SPEC_SCRIPTS[1]!)!).filter(
        (s) => !(schema.hasDefault && DBOPS_V002_ADDITIONS[0]!.test(s)),
      );
      const rows = SPEC_SCRIPTS.map((spec) => ({
        spec,
        row: history.find((r) => sameVersion(r.version, spec.version))!,
      }));
      return { statements: [...SPEC_ONLY_DROPS, ...additions], rows };
    };
    const describeRows = (rows: { spec: SpecScript; row: HistoryRow }[]) =>
      rows.map(({ spec, row }) => `${spec.version}: checksum ${row.checksum} -> ${spec.dbopsChecksum}`);

    if (dryRun) {
      const p = await plan(await readHistory(client, ctx.table));
      if (p.done) return result('already-taken-over', { takenOverOn: p.done.installedOn });
      return result('would-take-over', {
        statements: p.statements.map(firstLine),
        historyChanges: describeRows(p.rows),
      });
    }
    await prepareMigrationSession(client, { ...opts, schema: ctx.table.schema });
    return withLock(opts, ctx, async () => {
      await client.query('BEGIN');
      try {
        const p = await plan(await readHistory(client, ctx.table));
        if (p.done) {
          await client.query('ROLLBACK');
          return result('already-taken-over', { takenOverOn: p.done.installedOn });
        }
        for (const statement of p.statements) await client.query(statement);
        for (const { spec, row } of p.rows) {
          const file = files.get(spec)!;
          await client.query(
            `UPDATE ${qualified(ctx.table)} SET checksum = $1, description = $2, script = $3 WHERE installed_rank = $4`,
            [file.checksum, file.description, file.script, row.installedRank],
          );
        }
        await insertHistory(client, ctx.table, {
          ...TAKEOVER_ROW,
          script: TAKEOVER_ROW.description,
          checksum: null,
          executionTime: Date.now() - started,
          success: true,
        });
        await client.query('COMMIT');
        return result('taken-over', {
          statements: p.statements.map(firstLine),
          historyChanges: describeRows(p.rows),
        });
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  });
}

/**
 * `migrate --adopt-spec-schema`: the takeover, then the normal migrate. A dry run changes nothing
 * and lists the migrations that would follow the takeover (migrate itself would refuse the spec's
 * checksums before it).
 */
export async function migrateAdoptingSpecSchema(
  opts: MigratorOptions,
  dryRun = false,
): Promise<{ takeover: TakeoverResult; migrate: MigrateSummary }> {
  const takeover = await takeOverSpecSchema(opts, dryRun);
  if (takeover.status !== 'would-take-over') return { takeover, migrate: await migrate(opts, dryRun) };
  return withSession(opts, async (client, ctx) => {
    const history = await readHistory(client, ctx.table);
    const afterTakeover: HistoryRow[] = [
      ...history.map((r) => {
        const spec = SPEC_SCRIPTS.find((s) => r.type === 'SQL' && sameVersion(r.version, s.version));
        return spec ? { ...r, checksum: spec.dbopsChecksum } : r;
      }),
      {
        ...history.at(-1)!,
        installedRank: history.length + 1,
        ...TAKEOVER_ROW,
        script: TAKEOVER_ROW.description,
        checksum: null,
      },
    ];
    const state = computeState(ctx.resolved, afterTakeover);
    const migrations = state.pending.map((m) => ({
      version: m.version.text,
      description: m.description,
      script: m.script,
      executionTimeMs: 0,
    }));
    const summary: MigrateSummary = {
      database: opts.database,
      schema: ctx.table.schema,
      dryRun: true,
      initialVersion: state.currentVersion,
      finalVersion: migrations.at(-1)?.version ?? state.currentVersion,
      migrations,
      totalMs: takeover.executionTimeMs,
    };
    return { takeover, migrate: summary };
  });
}
