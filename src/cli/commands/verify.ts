import type { Command } from 'commander';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { backupStatus, BackupInputError, parseBackupId } from '../../../common/backup';
import { FailureType, failure } from '../../../common/failures';
import { verifyWorkflowId } from '../../../common/ids';
import {
  assertDatabaseName,
  LATEST,
  RestoreInputError,
  type VerifyWorkflowResult,
} from '../../../common/restore';
import { createBackupStore, listBackupEntries } from '../../../activities/storage';
import { DBOPS_BACKUP_ID, DBOPS_DATABASE, DBOPS_OPERATION } from '../../../common/search-attributes';
import { getConfig, type Config } from '../../config';
import { withClient, workflowUrl } from '../../temporal';
import { humanDuration, printJson } from '../output';

/** `latest` → the newest complete backup of `database`; an id is checked for shape. */
async function resolveId(config: Config, selector: string, database: string | undefined): Promise<string> {
  try {
    if (selector !== LATEST) return parseBackupId(selector).id;
    const db = database ?? config.databases[0]!;
    assertDatabaseName(db, '--database');
    const store = createBackupStore(config.storage);
    try {
      const entries = await listBackupEntries(store, db);
      const newest = [...entries].reverse().find((e) => backupStatus(e) !== 'incomplete');
      if (!newest)
        throw failure(FailureType.NotFound, `no complete backup of ${db} in ${store.describe(`${db}/`)}`);
      return newest.id;
    } finally {
      await store.close();
    }
  } catch (err) {
    if (err instanceof BackupInputError || err instanceof RestoreInputError)
      throw failure(FailureType.InvalidInput, err.message);
    throw err;
  }
}

export function registerVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description(
      'prove a backup restores: restore it into a scratch database, compare it with its manifest, record the result',
    )
    .argument('<backup>', `backup id or ${LATEST}`)
    .option('--database <db>', `whose backups ${LATEST} looks at (default: the first configured)`)
    .option('--json', 'machine-readable output')
    .action(async (selector: string, opts: { database?: string; json?: boolean }) => {
      const config = getConfig();
      const backupId = await resolveId(config, selector, opts.database);
      await withClient(config, async (client) => {
        const workflowId = verifyWorkflowId(backupId);
        let handle;
        try {
          handle = await client.workflow.start('verifyBackupWorkflow', {
            taskQueue: config.temporal.taskQueue,
            workflowId,
            args: [{ backupId, jobs: config.restore.jobs }],
            staticSummary: `verify backup ${backupId} by a test restore`,
            typedSearchAttributes: [
              { key: DBOPS_OPERATION, value: 'verify' },
              { key: DBOPS_DATABASE, value: parseBackupId(backupId).database },
              { key: DBOPS_BACKUP_ID, value: backupId },
            ],
          });
        } catch (err) {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
          handle = client.workflow.getHandle(workflowId);
        }
        if (!opts.json) process.stderr.write(`verifying ${backupId}: ${workflowUrl(config, workflowId)}\n`);
        const r = (await handle.result()) as VerifyWorkflowResult;
        if (opts.json) printJson(r);
        else
          process.stdout.write(
            `${r.backupId}: ${r.status} in ${humanDuration(r.durationMs)} — ${r.detail}\n`,
          );
      });
    });
}
