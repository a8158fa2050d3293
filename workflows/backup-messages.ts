import { defineQuery } from '@temporalio/workflow';
import type { BackupProgress } from '../common/backup';

/** Phase and stored bytes of a running backup (live byte counts are in the dump activity's heartbeat). */
export const backupProgressQuery = defineQuery<BackupProgress>('backupProgress');
