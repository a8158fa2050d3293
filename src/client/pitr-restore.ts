import type { Client } from '@temporalio/client';
import { isLsn } from '../../common/basebackup';
import { FailureType, failure } from '../../common/failures';
import { restoreWorkflowId } from '../../common/ids';
import { assertDatabaseName, assertPersonName, InputError } from '../../common/names';
import { pointInTimeSelector, type PointInTimeRestoreInput, type RecoveryTarget } from '../../common/pitr';
import { assertRestoreTarget } from '../../common/restore';
import {
  DBOPS_BACKUP_ID,
  DBOPS_DATABASE,
  DBOPS_OPERATION,
  DBOPS_PHASE,
} from '../../common/search-attributes';
import type { Config } from '../config';
import { requestFields, restoreHandle, type RestoreHandle, type RestoreRequestOptions } from './restore';
import { signIfKey } from './signing';
import { startOrJoin } from './start';

/** RFC 3339 with an explicit offset: a point in time without a zone is a guess about the server's. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/i;

/** The recovery target of `--to-time`, `--to-lsn` or `--to-latest` (exactly one); undefined: none given. */
export function recoveryTarget(opts: {
  toTime?: string;
  toLsn?: string;
  toLatest?: boolean;
}): RecoveryTarget | undefined {
  const given = [opts.toTime !== undefined, opts.toLsn !== undefined, Boolean(opts.toLatest)].filter(Boolean);
  if (given.length === 0) return undefined;
  if (given.length > 1)
    throw failure(FailureType.InvalidInput, 'give one of --to-time, --to-lsn and --to-latest, not several');
  if (opts.toTime !== undefined) {
    const ms = Date.parse(opts.toTime);
    if (!RFC3339.test(opts.toTime) || Number.isNaN(ms))
      throw failure(
        FailureType.InvalidInput,
        `--to-time ${JSON.stringify(opts.toTime)} is not an RFC 3339 time with a zone, e.g. 2026-12-05T09:30:00Z or 2026-12-05T10:30:00+01:00`,
      );
    return { kind: 'time', time: new Date(ms).toISOString() };
  }
  if (opts.toLsn !== undefined) {
    const lsn = opts.toLsn.toUpperCase();
    if (!isLsn(lsn))
      throw failure(
        FailureType.InvalidInput,
        `--to-lsn ${JSON.stringify(opts.toLsn)} is not a WAL location like 16/B374D848 (SELECT pg_current_wal_lsn() prints one)`,
      );
    return { kind: 'lsn', lsn };
  }
  return { kind: 'latest' };
}

/** Checks the names typed (nothing starts otherwise) and returns the target. */
export function pointInTimeTarget(
  database: string | undefined,
  target: string | undefined,
  requestedBy: string,
): string {
  try {
    assertPersonName(requestedBy);
    if (database === undefined)
      throw new InputError(
        'a point-in-time restore needs --database <db>: the database to take as it was then',
      );
    assertDatabaseName(database, '--database');
    const t = target ?? database;
    assertDatabaseName(t, '--target');
    assertRestoreTarget(t);
    return t;
  } catch (err) {
    if (err instanceof InputError) throw failure(FailureType.InvalidInput, err.message);
    throw err;
  }
}

/** Starts `dbops restore --to-time|--to-lsn|--to-latest`: approved like any restore (same id shape, same commands). */
export async function startPointInTimeRestore(
  client: Client,
  config: Config,
  options: RestoreRequestOptions & { recovery: RecoveryTarget },
): Promise<RestoreHandle> {
  const target = pointInTimeTarget(options.database, options.target, options.requestedBy);
  const database = options.database!;
  const now = options.now ?? new Date();
  const workflowId = `${restoreWorkflowId(target, now)}${options.dryRun ? '-dry-run' : ''}`;
  const backup = pointInTimeSelector(options.recovery);
  const request = options.dryRun
    ? undefined
    : await signIfKey(
        { kind: 'restore-request', workflowId, backup, target, signedAt: now.toISOString() },
        options.key ?? config.restore.signingKey,
      );
  const input: PointInTimeRestoreInput & { uiUrl: string } = {
    backup,
    database,
    recovery: options.recovery,
    target,
    ...requestFields(options, request),
    jobs: config.restore.jobs,
    dumpOptions: { noOwner: config.backup.noOwner, noPrivileges: config.backup.noPrivileges },
    uiUrl: config.temporal.uiUrl,
  };
  await startOrJoin(client, 'pointInTimeRestoreWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId,
    args: [input],
    staticSummary: `restore ${target} from ${database} at ${backup}${options.dryRun ? ' (dry run)' : ''}, requested by ${options.requestedBy}`,
    typedSearchAttributes: [
      { key: DBOPS_OPERATION, value: options.dryRun ? 'restore-dry-run' : 'restore' },
      { key: DBOPS_DATABASE, value: target },
      { key: DBOPS_PHASE, value: 'resolving' },
      { key: DBOPS_BACKUP_ID, value: backup },
    ],
  });
  return restoreHandle(client, workflowId);
}
