/**
 * A drill's settings and its own view of the servers: the environment its workers and CLI share,
 * and the Temporal client and backup store its checks use beside its worker processes.
 */
import type { Client, Connection } from '@temporalio/client';
import { createBackupStore, type BackupStore } from '../../../activities/storage';
import type { Config } from '../../../src/config';
import { connectClient } from '../../../src/client/connection';
import { stackVars, testRun } from '../../helpers/stack';
import { killAllWorkerProcesses } from './worker-process';

/** The settings a drill's workers and CLI share: its own task queue and local backup folder. */
export function drillEnv(queue: string, backupDir: string): Record<string, string> {
  return {
    DBOPS_TASK_QUEUE: queue,
    DBOPS_TEMPORAL_NAMESPACE: testRun().namespace,
    DBOPS_STORAGE: 'local',
    DBOPS_BACKUP_DIR: backupDir,
  };
}

/**
 * The settings of a drill's workers on S3 (the dev stack's versitygw under `s3`'s prefix): its own
 * task queue and namespace, and the stack's credentials, which a worker reads from its environment.
 */
export function s3WorkerEnv(queue: string, s3: Record<string, string>): Record<string, string | undefined> {
  const vars = stackVars();
  return {
    ...s3,
    DBOPS_TASK_QUEUE: queue,
    DBOPS_TEMPORAL_NAMESPACE: testRun().namespace,
    AWS_ACCESS_KEY_ID: vars.AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: vars.AWS_SECRET_ACCESS_KEY,
    AWS_REGION: vars.AWS_REGION ?? 'us-east-1',
  };
}

export interface DrillSession {
  connection: Connection;
  client: Client;
  store: BackupStore;
}

/** A Temporal client and the backup store of `config`. */
export async function openSession(config: Config): Promise<DrillSession> {
  const { client, connection } = await connectClient(config);
  return { client, connection, store: createBackupStore(config.storage) };
}

/** For afterAll: closes what openSession opened (if it got that far) and kills the file's worker processes. */
export async function closeSession(session: Partial<DrillSession>): Promise<void> {
  await session.connection?.close();
  await session.store?.close();
  await killAllWorkerProcesses();
}
