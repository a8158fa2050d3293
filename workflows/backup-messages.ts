import { defineQuery } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { BackupProgress } from '../common/backup';

/** Phase and stored bytes of a running backup (live byte counts are in the dump activity's heartbeat). */
export const backupProgressQuery = defineQuery<BackupProgress>('backupProgress');

/** Search attributes an operator filters runs by in the Web UI (registered on the server as Keyword). */
export const DBOPS_DATABASE = defineSearchAttributeKey('DbopsDatabase', SearchAttributeType.KEYWORD);
export const DBOPS_OPERATION = defineSearchAttributeKey('DbopsOperation', SearchAttributeType.KEYWORD);
export const DBOPS_BACKUP_ID = defineSearchAttributeKey('DbopsBackupId', SearchAttributeType.KEYWORD);
