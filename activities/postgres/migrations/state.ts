import type { ResolvedMigration } from './files';
import type { HistoryRow } from './history';
import { compareVersions, parseVersion, type MigrationVersion } from './version';

export type MigrationState =
  | 'Pending'
  | 'Success'
  | 'Failed'
  | 'Missing'
  | 'Future'
  | 'Ignored'
  | 'Baseline'
  | 'Below Baseline'
  | 'Deleted';

/** One line of `dbops info`, like Flyway's. */
export interface MigrationInfo {
  readonly version: string;
  readonly description: string;
  readonly type: string;
  readonly script: string;
  readonly installedOn: string | null;
  readonly executionTimeMs: number | null;
  readonly state: MigrationState;
  readonly checksum: number | null;
  readonly appliedChecksum: number | null;
}

export interface SchemaState {
  readonly infos: MigrationInfo[];
  readonly pending: ResolvedMigration[];
  /** Problems that stop migrate and validate (pending migrations are not among them). */
  readonly errors: string[];
  readonly currentVersion: string | null;
}

/** Merges files and history the way Flyway's info/validate do. */
export function computeState(
  resolved: readonly ResolvedMigration[],
  history: readonly HistoryRow[],
): SchemaState {
  const deleted = new Set(history.filter((r) => r.type === 'DELETE' && r.version).map((r) => r.version!));
  const baselineRow = history.find((r) => r.type === 'BASELINE' && r.version);
  const baseline = baselineRow ? parseVersion(baselineRow.version!) : undefined;
  // latest row per version (a failed row followed by a successful rerun, for example)
  const applied = new Map<string, { row: HistoryRow; version: MigrationVersion }>();
  for (const row of history) {
    if (!row.version || row.type === 'SCHEMA' || row.type === 'DELETE') continue;
    const version = parseVersion(row.version);
    if (!version) continue;
    applied.set(version.parts.join('.'), { row, version });
  }
  const key = (v: MigrationVersion) => v.parts.join('.');
  const maxApplied = [...applied.values()]
    .filter((a) => a.row.success && !deleted.has(a.row.version!))
    .map((a) => a.version)
    .sort(compareVersions)
    .at(-1);
  const maxResolved = resolved.at(-1)?.version;

  const infos: MigrationInfo[] = [];
  const errors: string[] = [];
  const pending: ResolvedMigration[] = [];
  const byVersion = new Map(resolved.map((m) => [key(m.version), m]));

  for (const row of history.filter((r) => r.type === 'SCHEMA')) {
    infos.push(infoOf(row, undefined, 'Success'));
  }
  for (const { row, version } of applied.values()) {
    const file = byVersion.get(key(version));
    let state: MigrationState;
    if (deleted.has(row.version!)) state = 'Deleted';
    else if (row.type === 'BASELINE') state = 'Baseline';
    else if (!row.success) state = 'Failed';
    else if (file) state = 'Success';
    else state = maxResolved && compareVersions(version, maxResolved) < 0 ? 'Missing' : 'Future';
    infos.push(infoOf(row, file, state));
    const label = `${row.version} (${row.description})`;
    if (state === 'Failed') {
      errors.push(
        `Detected failed migration to version ${label}: remove any half-completed changes, fix ${row.script}, then run \`dbops repair\` and \`dbops migrate\``,
      );
    } else if (state === 'Missing') {
      errors.push(
        `Detected applied migration not resolved locally: ${label} (${row.script}): restore the file, or run \`dbops repair\` to mark it deleted if it was removed on purpose`,
      );
    } else if (state === 'Success' && file && row.type === 'SQL') {
      if (row.checksum !== file.checksum) {
        errors.push(
          `Migration checksum mismatch for migration version ${row.version} (${file.file}): applied to database ${row.checksum}, resolved locally ${file.checksum}. Revert the changes to the file, or run \`dbops repair\` to accept them`,
        );
      }
      if (row.description !== file.description) {
        errors.push(
          `Migration description mismatch for migration version ${row.version} (${file.file}): applied to database "${row.description}", resolved locally "${file.description}". Revert the rename, or run \`dbops repair\``,
        );
      }
    }
  }
  for (const file of resolved) {
    if (applied.has(key(file.version)) && !deleted.has(applied.get(key(file.version))!.row.version!))
      continue;
    let state: MigrationState;
    if (baseline && compareVersions(file.version, baseline) <= 0) state = 'Below Baseline';
    else if (maxApplied && compareVersions(file.version, maxApplied) < 0) state = 'Ignored';
    else state = 'Pending';
    infos.push(infoOf(undefined, file, state));
    if (state === 'Pending') pending.push(file);
    if (state === 'Ignored') {
      errors.push(
        `Detected resolved migration not applied to database: ${file.version.text} (${file.file}) is older than the current version ${maxApplied!.text} (out of order): give it a version above ${maxApplied!.text}, or remove it`,
      );
    }
  }
  infos.sort((a, b) => orderKey(a).localeCompare(orderKey(b)) || compareInfos(a, b));
  return { infos, pending, errors, currentVersion: maxApplied?.text ?? null };
}

function orderKey(info: MigrationInfo): string {
  return info.type === 'SCHEMA' ? '0' : '1';
}

function compareInfos(a: MigrationInfo, b: MigrationInfo): number {
  const va = parseVersion(a.version);
  const vb = parseVersion(b.version);
  return va && vb ? compareVersions(va, vb) : 0;
}

function infoOf(
  row: HistoryRow | undefined,
  file: ResolvedMigration | undefined,
  state: MigrationState,
): MigrationInfo {
  return {
    version: row?.version ?? file?.version.text ?? '',
    description: row?.description ?? file?.description ?? '',
    type: row?.type ?? 'SQL',
    script: row?.script ?? file?.script ?? '',
    installedOn: row?.installedOn ?? null,
    executionTimeMs: row?.executionTime ?? null,
    state,
    checksum: file?.checksum ?? null,
    appliedChecksum: row?.checksum ?? null,
  };
}

/** Errors of `validate`: the migrate-time errors plus pending migrations (as Flyway 10). */
export function validationErrors(state: SchemaState): string[] {
  return [
    ...state.errors,
    ...state.pending.map(
      (m) =>
        `Detected resolved migration not applied to database: ${m.version.text} (${m.script}): run \`dbops migrate\``,
    ),
  ];
}
