// Bundle entry for the worker: every workflow dbops runs is exported here.
export { pingWorkflow } from './ping';
export { milvusMaintenanceWorkflow } from './milvus-maintenance';
export { milvusRepairWorkflow } from './milvus-repair';
export { backupWorkflow } from './backup';
export { restoreWorkflow } from './restore';
export { pointInTimeRestoreWorkflow } from './restore/point-in-time';
export { restoreRollbackWorkflow } from './restore-rollback';
export { targetLockWorkflow } from './target-lock';
export { verifyBackupWorkflow } from './verify';
export { partitionMaintenanceWorkflow } from './partition-maintenance';
export { baseBackupWorkflow } from './basebackup';
export { walArchiverWorkflow } from './wal-archiver';
