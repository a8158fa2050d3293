/**
 * DBOPS_DUMP_NO_OWNER / DBOPS_DUMP_NO_PRIVILEGES against the dev stack: a database whose table is
 * owned by, and granted to, a role that exists only at backup time; the role is dropped before
 * the restores, as on a cluster built without it.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quoteIdent } from '../../activities/postgres/connection';
import { loadManifest, withBackupStore } from '../../activities/storage';
import type { BackupFormat, BackupManifest } from '../../common/backup';
import { rootMessage } from '../../common/failures';
import type { VerifyWorkflowResult } from '../../common/restore';
import { backupWorkflowArgs } from '../../src/client/backup';
import type { Config } from '../../src/config';
import type { backupWorkflow } from '../../workflows/backup';
import { startApprovedRestore } from '../drills/kit/restore';
import { testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import { rowCounts } from './backup-helpers';
import { dropDatabasesLike, populate, sql } from './restore-fixtures';

const suffix = uniqueSuffix();
const db = `t_dumpopt_${suffix}`;
const role = `t_owner_${suffix}`;
const queue = `test-dump-options-${suffix}`;
const backupDir = path.join(testRun().backupDir, db);
const env = { DBOPS_TASK_QUEUE: queue, DBOPS_BACKUP_DIR: backupDir, DBOPS_DATABASES: db };
/** The worker's config and the backups with owners and grants (the default). */
const config = testConfig(env);
/** The same, dumping as the spec's backup.sh did (pg_dump --no-owner --no-privileges). */
const specConfig = testConfig({ ...env, DBOPS_DUMP_NO_OWNER: 'true', DBOPS_DUMP_NO_PRIVILEGES: 'true' });

let tw: TestWorker;
const backups: Record<'customBare' | 'plainBare' | 'customFull' | 'plainFull', BackupManifest> = {} as never;
let before: Record<string, number>;

/** A backup as `dbops backup` starts it (the config's settings as workflow input), one per second. */
async function backUp(cfg: Config, format: BackupFormat): Promise<BackupManifest> {
  // Backup ids have a resolution of one second: two in the same second would be one backup.
  await new Promise((r) => setTimeout(r, 1100));
  const { backupId } = await tw.client.workflow.execute<typeof backupWorkflow>('backupWorkflow', {
    taskQueue: queue,
    workflowId: `test-dump-options-${db}-${Date.now()}`,
    args: [{ ...backupWorkflowArgs(cfg, db, 'manual', format, 'zstd'), prune: false, verify: false }],
  });
  return withBackupStore(config.storage, (store) => loadManifest(store, backupId));
}

async function restore(manifest: BackupManifest) {
  const handle = await startApprovedRestore(tw.client, queue, {
    backup: manifest.id,
    target: db,
    maximumAttempts: 1,
  });
  return handle.result();
}

const tablesOf = (m: BackupManifest) => m.tables.filter((t) => t.kind !== 'partitioned');

async function ownerAndAcl(table: string): Promise<{ owner: string; acl: string | null }> {
  const [r] = await sql<{ owner: string; acl: string | null }>(
    config,
    db,
    'SELECT pg_get_userbyid(relowner) AS owner, relacl::text AS acl FROM pg_class WHERE oid = $1::regclass',
    [table],
  );
  return r!;
}

beforeAll(async () => {
  await populate(config, db, 2000);
  await sql(config, undefined, `DROP ROLE IF EXISTS ${quoteIdent(role)}`);
  await sql(config, undefined, `CREATE ROLE ${quoteIdent(role)}`);
  await sql(
    config,
    db,
    `CREATE TABLE owned (id int PRIMARY KEY, v text);
     INSERT INTO owned SELECT g, 'v' || g FROM generate_series(1, 321) g;
     ALTER TABLE owned OWNER TO ${quoteIdent(role)};
     GRANT SELECT, INSERT ON users TO ${quoteIdent(role)};`,
  );
  expect(await ownerAndAcl('owned')).toMatchObject({ owner: role });
  expect((await ownerAndAcl('users')).acl).toContain(`${role}=ar/`);
  tw = await startTestWorker(config);
  backups.customBare = await backUp(specConfig, 'custom');
  backups.plainBare = await backUp(specConfig, 'plain');
  backups.customFull = await backUp(config, 'custom');
  backups.plainFull = await backUp(config, 'plain');
  before = await rowCounts(config, db, tablesOf(backups.customBare));
  // Now the cluster lacks the role, like one built without it.
  await sql(
    config,
    db,
    `REASSIGN OWNED BY ${quoteIdent(role)} TO CURRENT_USER; DROP OWNED BY ${quoteIdent(role)}`,
  );
  await sql(config, undefined, `DROP ROLE ${quoteIdent(role)}`);
}, 240_000);

afterAll(async () => {
  await tw?.stop();
  await dropDatabasesLike(config, db);
  await sql(config, undefined, `DROP ROLE IF EXISTS ${quoteIdent(role)}`);
  await rm(backupDir, { recursive: true, force: true });
});

describe('dump options (DBOPS_DUMP_NO_OWNER, DBOPS_DUMP_NO_PRIVILEGES)', () => {
  it('the manifest records how each backup was dumped', () => {
    expect(backups.customBare.dumpOptions).toEqual({ noOwner: true, noPrivileges: true });
    expect(backups.plainBare.dumpOptions).toEqual({ noOwner: true, noPrivileges: true });
    expect(backups.customFull.dumpOptions).toEqual({ noOwner: false, noPrivileges: false });
    expect(backups.plainFull.dumpOptions).toEqual({ noOwner: false, noPrivileges: false });
    expect(before['public.owned']).toBe(321);
  });

  it.each(['customBare', 'plainBare'] as const)(
    'a %s backup restores where the role is missing: same rows, owned by the restoring role, no grants',
    async (which) => {
      const manifest = backups[which];
      const result = await restore(manifest);
      expect(result.outcome).toBe('restored');
      expect(await rowCounts(config, db, tablesOf(manifest))).toEqual(before);
      expect(await ownerAndAcl('owned')).toEqual({ owner: config.pg.user, acl: null });
      expect((await ownerAndAcl('users')).acl).toBeNull();
    },
    240_000,
  );

  it('a verification of the custom backup without owners passes where the role is missing', async () => {
    const r = await tw.client.workflow.execute('verifyBackupWorkflow', {
      taskQueue: queue,
      workflowId: `test-dump-options-verify-${Date.now()}`,
      args: [{ backupId: backups.customBare.id, maximumAttempts: 1 }],
    });
    expect((r as VerifyWorkflowResult).status).toBe('passed');
  }, 240_000);

  it.each(['customFull', 'plainFull'] as const)(
    'a %s backup (owners and grants dumped) fails to restore where the role is missing; the target stays',
    async (which) => {
      const live = await rowCounts(config, db, tablesOf(backups[which]));
      const err = await restore(backups[which]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect(rootMessage(err)).toContain(`role "${role}" does not exist`);
      expect(await rowCounts(config, db, tablesOf(backups[which]))).toEqual(live);
    },
    240_000,
  );
});
