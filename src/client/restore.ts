import type { Client, WorkflowExecutionStatusName, WorkflowHandle } from '@temporalio/client';
import { parseBackupId } from '../../common/backup';
import { FailureType, failure } from '../../common/failures';
import { restoreWorkflowId } from '../../common/ids';
import type { ApprovalRecord, ApprovalRequest, SignedStatement } from '../../common/approvals';
import { type RestoreStatus, assertRestoreTarget, LATEST, LATEST_VERIFIED } from '../../common/restore';
import { assertDatabaseName, assertPersonName, assertPlainText, InputError } from '../../common/names';
import type { restoreWorkflow } from '../../workflows/restore';
import { restoreApprovalUpdate, restoreStatusQuery } from '../../workflows/restore-messages';
import {
  DBOPS_BACKUP_ID,
  DBOPS_DATABASE,
  DBOPS_OPERATION,
  DBOPS_PHASE,
} from '../../common/search-attributes';
import type { Config } from '../config';
import { signIfKey } from './signing';
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

/** What a person asks of any restore (logical or point-in-time), besides what to restore. */
export interface RestoreRequestOptions {
  target?: string;
  database?: string;
  dryRun?: boolean;
  requestedBy: string;
  /** The SSH key to sign the request with (findSigningKey); default DBOPS_SIGNING_KEY, the agent, ~/.ssh/id_ed25519. */
  key?: string;
  /** Asks for more care than the worker's policy: longer keeping, four-eyes (never less). */
  keepDays?: number;
  fourEyes?: boolean;
  allowUnlistedTarget?: boolean;
  now?: Date;
}

/** The workflow input's request fields: only stricter wishes than the worker's policy are sent. */
export function requestFields(options: RestoreRequestOptions, request: SignedStatement | undefined) {
  return {
    dryRun: options.dryRun,
    requestedBy: options.requestedBy,
    ...(request && { request }),
    ...(options.keepDays !== undefined && { keepDays: options.keepDays }),
    ...(options.fourEyes && { fourEyes: true }),
    ...(options.allowUnlistedTarget && { allowUnlistedTarget: true }),
  };
}

export async function startRestore(
  client: Client,
  config: Config,
  options: RestoreRequestOptions & { backup: string },
): Promise<RestoreHandle> {
  const target = restoreTarget(config, options.backup, options.target, options.database, options.requestedBy);
  const now = options.now ?? new Date();
  const workflowId = `${restoreWorkflowId(target, now)}${options.dryRun ? '-dry-run' : ''}`;
  // A dry run decides nothing: it is never signed (no passphrase prompt for a look at the plan).
  const request = options.dryRun
    ? undefined
    : await signIfKey(
        { kind: 'restore-request', workflowId, backup: options.backup, target, signedAt: now.toISOString() },
        options.key ?? config.restore.signingKey,
      );
  // Policy (four-eyes, keep days, approval wait) is the worker's: only stricter wishes are sent.
  const input: Parameters<typeof restoreWorkflow>[0] = {
    backup: options.backup,
    database: options.database ?? target,
    target,
    ...requestFields(options, request),
    jobs: config.restore.jobs,
    uiUrl: config.temporal.uiUrl,
  };
  const { handle } = await startOrJoin(client, 'restoreWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId,
    args: [input],
    staticSummary: `restore ${target} from ${options.backup}${options.dryRun ? ' (dry run)' : ''}, requested by ${options.requestedBy}`,
    typedSearchAttributes: [
      { key: DBOPS_OPERATION, value: options.dryRun ? 'restore-dry-run' : 'restore' },
      { key: DBOPS_DATABASE, value: target },
      // Where the restore is (awaiting-approval lists those waiting); the workflow updates it.
      { key: DBOPS_PHASE, value: 'resolving' },
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
 * Approves or rejects a waiting restore (a Temporal Update: the answer is immediate), signed with
 * the operator's SSH key when one is found. The plan hash is the one the approver was shown: it is
 * required, never filled in from the plan waiting. A refusal is a Refused failure naming the reason.
 */
export async function decideRestore(
  client: Client,
  workflowId: string,
  request: Omit<ApprovalRequest, 'signed'> & { key?: string; now?: Date },
): Promise<ApprovalRecord> {
  checkDecision(request);
  const { key, now, ...decision } = request;
  const signed = await signIfKey(
    {
      kind: 'restore-decision',
      workflowId,
      planHash: decision.planHash,
      decision: decision.decision,
      comment: decision.comment ?? null,
      signedAt: (now ?? new Date()).toISOString(),
    },
    key,
  );
  return sendDecision(restoreHandle(client, workflowId), { ...decision, ...(signed && { signed }) });
}

/** Sends a decision as it is (tests send forged ones this way); a refusal becomes a Refused failure. */
export async function sendDecision(handle: RestoreHandle, request: ApprovalRequest): Promise<ApprovalRecord> {
  try {
    return await handle.executeUpdate(restoreApprovalUpdate, { args: [request] });
  } catch (err) {
    const cause = (err as { cause?: Error }).cause;
    throw failure(
      FailureType.Refused,
      `${request.decision === 'approve' ? 'approval' : 'rejection'} refused: ${cause?.message ?? (err as Error).message}`,
    );
  }
}
