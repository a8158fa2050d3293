import type { Client, WorkflowExecutionStatusName, WorkflowHandle } from '@temporalio/client';
import { parseBackupId } from '../../common/backup';
import { FailureType, failure } from '../../common/failures';
import { restoreWorkflowId } from '../../common/ids';
import {
  type ApprovalRecord,
  type ApprovalRequest,
  type RestoreStatus,
  assertRestoreTarget,
  LATEST,
  LATEST_VERIFIED,
} from '../../common/restore';
import { assertDatabaseName, assertPersonName, assertPlainText, InputError } from '../../common/names';
import type { restoreWorkflow } from '../../workflows/restore';
import { restoreApprovalUpdate, restoreStatusQuery } from '../../workflows/restore-messages';
import { DBOPS_BACKUP_ID, DBOPS_DATABASE, DBOPS_OPERATION } from '../../common/search-attributes';
import type { Config } from '../config';
import { startOrJoin } from './start';

export type RestoreHandle = WorkflowHandle<typeof restoreWorkflow>;

function inputError(err: unknown): never {
  if (err instanceof InputError) throw failure(FailureType.InvalidInput, err.message);
  throw err;
}

/**
 * Checks what a person typed locally (clear error, nothing started) and works out the target: the
 * backup id's shape, --database, the requester's name, and a target that may be replaced (never
 * postgres, template0 or template1; the workflow checks the target again, for other starters).
 */
export function restoreTarget(
  config: Config,
  backup: string,
  target?: string,
  database?: string,
  requestedBy?: string,
): string {
  try {
    if (requestedBy !== undefined) assertPersonName(requestedBy);
    if (database !== undefined) assertDatabaseName(database, '--database');
    const isSelector = backup === LATEST || backup === LATEST_VERIFIED;
    const backupDatabase = isSelector ? undefined : parseBackupId(backup).database;
    const t = target ?? backupDatabase ?? database ?? config.databases[0]!;
    assertDatabaseName(t, 'target database');
    assertRestoreTarget(t);
    return t;
  } catch (err) {
    return inputError(err);
  }
}

export async function startRestore(
  client: Client,
  config: Config,
  options: {
    backup: string;
    target?: string;
    database?: string;
    dryRun?: boolean;
    requestedBy: string;
    now?: Date;
  },
): Promise<RestoreHandle> {
  const target = restoreTarget(config, options.backup, options.target, options.database, options.requestedBy);
  const input: Parameters<typeof restoreWorkflow>[0] = {
    backup: options.backup,
    database: options.database ?? target,
    target,
    dryRun: options.dryRun,
    requestedBy: options.requestedBy,
    approvalTimeoutMs: config.restore.approvalTimeoutMs,
    fourEyes: config.restore.fourEyes,
    keepDays: config.restore.keepDays,
    jobs: config.restore.jobs,
    uiUrl: config.temporal.uiUrl,
  };
  const now = options.now ?? new Date();
  const { handle } = await startOrJoin(client, 'restoreWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId: `${restoreWorkflowId(target, now)}${options.dryRun ? '-dry-run' : ''}`,
    args: [input],
    staticSummary: `restore ${target} from ${options.backup}${options.dryRun ? ' (dry run)' : ''}, requested by ${options.requestedBy}`,
    typedSearchAttributes: [
      { key: DBOPS_OPERATION, value: options.dryRun ? 'restore-dry-run' : 'restore' },
      { key: DBOPS_DATABASE, value: target },
      ...(options.backup === LATEST || options.backup === LATEST_VERIFIED
        ? []
        : [{ key: DBOPS_BACKUP_ID, value: options.backup }]),
    ],
  });
  return handle;
}

export function restoreHandle(client: Client, workflowId: string): RestoreHandle {
  return client.workflow.getHandle<typeof restoreWorkflow>(workflowId);
}

/**
 * Queries the restore's status every 500 ms, handing each answer to `onStatus`, until `until`
 * holds or the run is closed; returns the last status (undefined when none was answered).
 */
export async function pollRestoreStatus(
  handle: RestoreHandle,
  until: (s: RestoreStatus) => boolean,
  onStatus?: (s: RestoreStatus) => void,
): Promise<RestoreStatus | undefined> {
  for (;;) {
    const desc = await handle.describe();
    let s: RestoreStatus | undefined;
    try {
      s = await handle.query(restoreStatusQuery);
    } catch {
      s = undefined;
    }
    if (s) onStatus?.(s);
    if (s && until(s)) return s;
    if (desc.status.name !== 'RUNNING') return s;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The run's state in Temporal and the restore's own status. */
export async function restoreStatus(
  client: Client,
  workflowId: string,
): Promise<{ workflowStatus: WorkflowExecutionStatusName; status: RestoreStatus }> {
  const handle = restoreHandle(client, workflowId);
  const desc = await handle.describe();
  return { workflowStatus: desc.status.name, status: await handle.query(restoreStatusQuery) };
}

/** The approver's name and comment, as typed: refused locally (InvalidInput) before anything connects. */
export function checkDecision(request: { by: string; comment?: string }): void {
  try {
    assertPersonName(request.by);
    if (request.comment !== undefined) assertPlainText(request.comment, '--comment');
  } catch (err) {
    inputError(err);
  }
}

/**
 * Approves or rejects a waiting restore (a Temporal Update: the answer is immediate). Without a
 * plan hash, the one waiting is taken. A refusal is a Refused failure naming the workflow's reason.
 */
export async function decideRestore(
  client: Client,
  workflowId: string,
  request: Omit<ApprovalRequest, 'planHash'> & { planHash?: string },
): Promise<ApprovalRecord> {
  checkDecision(request);
  const handle = restoreHandle(client, workflowId);
  const status = await handle.query(restoreStatusQuery);
  const planHash = request.planHash ?? status.planHash ?? '';
  try {
    return await handle.executeUpdate(restoreApprovalUpdate, { args: [{ ...request, planHash }] });
  } catch (err) {
    const cause = (err as { cause?: Error }).cause;
    throw failure(
      FailureType.Refused,
      `${request.decision === 'approve' ? 'approval' : 'rejection'} refused: ${cause?.message ?? (err as Error).message}`,
    );
  }
}
