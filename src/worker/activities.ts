import os from 'node:os';
import type { Config } from '../config';
import { createPostgresActivities } from '../../activities/postgres';
import { createSystemActivities } from '../../activities/system';
import { createMilvusActivities } from '../../activities/milvus';

/**
 * Wires configuration into the activity factories. Secrets stay here, in the worker process:
 * activities read them from their dependencies, never from workflow arguments.
 */
export function buildActivities(config: Config, identity = `dbops@${os.hostname()}:${process.pid}`) {
  return {
    ...createSystemActivities({ identity }),
    ...createPostgresActivities({ pg: config.pg }),
    ...createMilvusActivities({ milvus: config.milvus, pg: config.pg }),
  };
}

export type DbopsActivities = ReturnType<typeof buildActivities>;
