import { chmod, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../../../src/config';
import { testConfig } from '../../helpers/stack';
import type { PrivatePostgres } from './private-servers';

/**
 * A point-in-time drill's settings on its private PostgreSQL: its own folder (store, WAL spool,
 * scratch), task queue and replication slot. As root, the recovery's temporary server runs as
 * postgres, so the folder must be one it can traverse.
 */
export async function pitrDrillConfig(
  pg: PrivatePostgres,
  name: string,
  suffix: string,
  database: string,
): Promise<{ tmp: string; config: Config }> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), `t_${name}_${suffix}`));
  await chmod(tmp, 0o755);
  const config = testConfig({
    ...pg.env,
    DBOPS_TASK_QUEUE: `drill-${name.replace(/_/g, '-')}-${suffix}`,
    DBOPS_BACKUP_DIR: path.join(tmp, 'store'),
    DBOPS_DATABASES: database,
    DBOPS_WAL_SLOT: `dbops_${name}_${suffix}`,
    DBOPS_WAL_SPOOL_DIR: path.join(tmp, 'spool'),
    DBOPS_SCRATCH_DIR: tmp,
  });
  return { tmp, config };
}
