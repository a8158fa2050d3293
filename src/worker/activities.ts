import os from 'node:os';
import type { Config } from '../config';
import {
  createDumpActivities,
  createPostgresActivities,
  createRestoreActivities,
} from '../../activities/postgres';
import { createStorageActivities } from '../../activities/storage';
import { createNotifyActivities } from '../../activities/notify';
import { createSystemActivities } from '../../activities/system';
import { createMilvusActivities } from '../../activities/milvus';
import { createApprovalActivities } from '../../activities/approvals';

/**
 * Wires configuration into the activity factories. Secrets stay here, in the worker process:
 * activities read them from their dependencies, never from workflow arguments.
 */
export function buildActivities(config: Config, identity = `dbops@${os.hostname()}:${process.pid}`) {
  return {
    ...createSystemActivities({ identity }),
    ...createPostgresActivities({ pg: config.pg, migrations: config.migrations }),
    ...createMilvusActivities({ milvus: config.milvus, pg: config.pg }),
    ...createStorageActivities({ storage: config.storage, retention: config.backup }),
    ...createNotifyActivities({ slackWebhookUrl: config.slackWebhookUrl }),
    ...createApprovalActivities({
      restore: config.restore,
      databases: config.databases,
      temporal: config.temporal,
    }),
    ...createRestoreActivities({
      pg: config.pg,
      verifyPg: config.verifyPg,
      storage: config.storage,
      tempDir: config.scratchDir,
    }),
  };
}

/** Activities of the `<taskQueue>-dumps` worker (concurrency-limited): pg_dump and archive checks. */
export function buildDumpActivities(config: Config) {
  return createDumpActivities({ pg: config.pg, storage: config.storage, tempDir: config.scratchDir });
}

export type DbopsActivities = ReturnType<typeof buildActivities>;
