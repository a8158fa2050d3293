import os from 'node:os';
import type { Config } from '../config';
import {
  createDumpActivities,
  createPostgresActivities,
  createRestoreActivities,
} from '../../activities/postgres';
import { createStorageActivities, withAge, withManifestKey } from '../../activities/storage';
import { createNotifyActivities } from '../../activities/notify';
import { createSystemActivities } from '../../activities/system';
import { createMilvusActivities } from '../../activities/milvus';
import { createApprovalActivities } from '../../activities/approvals';
import {
  createBaseBackupActivities,
  createBaseBackupCatalogActivities,
} from '../../activities/postgres/basebackup';
import { createWalActivities } from '../../activities/postgres/wal';
import { createPointInTimeActivities } from '../../activities/postgres/pitr';
import { recordWalLag } from './wal-metrics';

/**
 * Wires configuration into the activity factories. Secrets stay here, in the worker process:
 * activities read them from their dependencies, never from workflow arguments.
 */
export function buildActivities(config: Config, identity = `dbops@${os.hostname()}:${process.pid}`) {
  // DBOPS_MANIFEST_KEY is read here, at start: a missing or wrong key stops the worker with the fix.
  const storage = workerStorage(config);
  return {
    ...createSystemActivities({ identity }),
    ...createPostgresActivities({ pg: config.pg, migrations: config.migrations }),
    ...createMilvusActivities({ milvus: config.milvus, pg: config.pg }),
    ...createStorageActivities({ storage, retention: config.backup }),
    ...createNotifyActivities({ slackWebhookUrl: config.slackWebhookUrl }),
    ...createApprovalActivities({
      restore: config.restore,
      databases: config.databases,
      temporal: config.temporal,
    }),
    ...createRestoreActivities({
      pg: config.pg,
      verifyPg: config.verifyPg,
      storage,
      tempDir: config.scratchDir,
    }),
    ...createBaseBackupCatalogActivities({
      pg: config.pg,
      storage,
      tempDir: config.scratchDir,
      retention: { keepFull: config.basebackup.keepFull },
    }),
    // Point-in-time restore: a temporary PostgreSQL recovering from base backups and archived WAL.
    ...createPointInTimeActivities({
      pg: config.pg,
      verifyPg: config.verifyPg,
      storage,
      tempDir: config.scratchDir,
    }),
    ...createWalActivities({
      pg: config.pg,
      storage,
      slot: config.wal.slot,
      spoolDir: config.wal.spoolDir,
      onLag: recordWalLag,
    }),
  };
}

/** Activities of the `<taskQueue>-dumps` worker (concurrency-limited): pg_dump, pg_basebackup and their checks. */
export function buildDumpActivities(config: Config) {
  return {
    ...createDumpActivities({
      pg: config.pg,
      storage: workerStorage(config),
      tempDir: config.scratchDir,
    }),
    // pg_basebackup and its read-back proof are as heavy as a dump: they share its limit.
    ...createBaseBackupActivities({
      pg: config.pg,
      storage: workerStorage(config),
      tempDir: config.scratchDir,
    }),
  };
}

/** The store as workers use it: manifests signed and proven (DBOPS_MANIFEST_KEY), archives encrypted (DBOPS_BACKUP_AGE_*). */
function workerStorage(config: Config) {
  return withAge(withManifestKey(config.storage, config.manifestKeyFile), config.age);
}

export type DbopsActivities = ReturnType<typeof buildActivities>;
