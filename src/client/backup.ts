import type { Client, WorkflowHandle } from '@temporalio/client';
import type {
  BackupCompression,
  BackupFormat,
  BackupProgress,
  BackupWorkflowInput,
} from '../../common/backup';
import { assertDatabaseName, InputError } from '../../common/names';
import { FailureType, failure } from '../../common/failures';
import { backupWorkflowId } from '../../common/ids';
import type { backupWorkflow } from '../../workflows/backup';
import { backupProgressQuery } from '../../workflows/backup-messages';
import { DBOPS_DATABASE, DBOPS_OPERATION } from '../../common/search-attributes';
import type { Config } from '../config';
import { startOrJoin } from './start';

/** The workflow's arguments: what to back up plus non-secret defaults from the config. */
export function backupWorkflowArgs(
  config: Config,
  database: string,
  trigger: BackupWorkflowInput['trigger'],
  format?: BackupFormat,
  compression?: BackupCompression,
): Parameters<typeof backupWorkflow>[0] {
  return {
    database,
    trigger,
    format,
    compression,
    uiUrl: config.temporal.uiUrl,
    defaultFormat: config.backup.format,
    defaultCompression: config.backup.compression,
    dumpOptions: { noOwner: config.backup.noOwner, noPrivileges: config.backup.noPrivileges },
  };
}

export const backupSummary = (database: string, trigger: BackupWorkflowInput['trigger']) =>
  `backup of ${database}, ${trigger}`;

export function backupSearchAttributes(database: string) {
  return [
    { key: DBOPS_DATABASE, value: database },
    { key: DBOPS_OPERATION, value: 'backup' },
  ];
}

/**
 * Starts (or joins) the manual backup of `database` for the current minute: two starts in the
 * same minute make one backup. A failed run of that minute may be started again.
 */
export async function startBackup(
  client: Client,
  config: Config,
  options: { database: string; format?: BackupFormat; compression?: BackupCompression; now?: Date },
): Promise<WorkflowHandle<typeof backupWorkflow>> {
  try {
    assertDatabaseName(options.database);
  } catch (err) {
    if (err instanceof InputError) throw failure(FailureType.InvalidInput, err.message);
    throw err;
  }
  const { handle } = await startOrJoin(client, 'backupWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId: backupWorkflowId(options.database, options.now ?? new Date()),
    args: [backupWorkflowArgs(config, options.database, 'manual', options.format, options.compression)],
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
    staticSummary: backupSummary(options.database, 'manual'),
    typedSearchAttributes: backupSearchAttributes(options.database),
  });
  return handle;
}

/**
 * Phase from the workflow's query, bytes live from the dump activity's heartbeat when one is
 * running (the query only knows the bytes stored so far).
 */
export async function backupProgress(
  client: Client,
  handle: WorkflowHandle<typeof backupWorkflow>,
): Promise<BackupProgress> {
  const progress = await handle.query(backupProgressQuery);
  const beat = (await handle.describe()).raw.pendingActivities?.[0]?.heartbeatDetails?.payloads?.[0];
  const live = beat
    ? client.options.loadedDataConverter.payloadConverter.fromPayload<{ bytes?: number }>(beat)
    : undefined;
  return { ...progress, bytes: live?.bytes ?? progress.bytes };
}
