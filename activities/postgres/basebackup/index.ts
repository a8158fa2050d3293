import type { BaseBackupEntry, BaseBackupKind, BaseBackupManifest } from '../../../common/basebackup';
import { FailureType, failure } from '../../../common/failures';
import { InputError } from '../../../common/names';
import { withBackupStore } from '../../storage';
import {
  discardIncompleteBaseBackup,
  listBaseBackupEntries,
  parentForIncremental,
  writeBaseBackupManifest,
} from './catalog';
import { incrementalProblem, inspectCluster } from './cluster';
import { type BaseBackupDeps, refuseEncryption, takeBaseBackup, type TakeBaseBackupInput } from './take';
import { verifyBaseBackup, type VerifyBaseBackupInput } from './verify';

export type { BaseBackupDeps } from './take';
export { listBaseBackupEntries } from './catalog';
export { inspectCluster } from './cluster';

function asInputFailure(err: unknown): never {
  if (err instanceof InputError) throw failure(FailureType.InvalidInput, err.message);
  throw err;
}

/**
 * Base backups, streaming half: pg_basebackup into the store and the read-back proof. They run on
 * the `<taskQueue>-dumps` worker, which limits how many heavy jobs run at once.
 */
export function createBaseBackupActivities(deps: BaseBackupDeps) {
  return {
    async takeBaseBackup(input: TakeBaseBackupInput) {
      return takeBaseBackup(deps, input).catch(asInputFailure);
    },
    async verifyBaseBackup(input: VerifyBaseBackupInput) {
      return verifyBaseBackup(deps, input).catch(asInputFailure);
    },
  };
}

/** Base backups, short half: what the server and the store say, the manifest, cleanup (main worker). */
export function createBaseBackupCatalogActivities(deps: BaseBackupDeps) {
  const withStore = <T>(fn: Parameters<typeof withBackupStore<T>>[1]) =>
    withBackupStore(deps.storage, fn).catch(asInputFailure);
  return {
    /**
     * The cluster to back up and, for an incremental backup, the backup it builds on. Refuses an
     * incremental one the server cannot take (summarize_wal off) or that has nothing to build on.
     */
    async planBaseBackup(input: { kind: BaseBackupKind }): Promise<{
      systemIdentifier: string;
      serverVersion: string;
      serverMajor: number;
      parent?: BaseBackupManifest;
    }> {
      refuseEncryption(deps.storage);
      const cluster = await inspectCluster(deps.pg);
      const base = {
        systemIdentifier: cluster.systemIdentifier,
        serverVersion: cluster.serverVersion,
        serverMajor: cluster.major,
      };
      if (input.kind === 'full') return base;
      const problem = incrementalProblem(deps.pg, cluster);
      if (problem) throw failure(FailureType.Misconfigured, problem);
      return {
        ...base,
        parent: await withStore((store) => parentForIncremental(store, cluster.systemIdentifier)),
      };
    },
    async writeBaseBackupManifest(manifest: BaseBackupManifest): Promise<{ location: string }> {
      return withStore(async (store) => ({ location: await writeBaseBackupManifest(store, manifest) }));
    },
    async discardIncompleteBaseBackup(input: {
      systemIdentifier: string;
      backupId: string;
    }): Promise<{ removed: number }> {
      return withStore(async (store) => ({
        removed: await discardIncompleteBaseBackup(store, input.systemIdentifier, input.backupId),
      }));
    },
    async listBaseBackups(input: { systemIdentifier: string }): Promise<BaseBackupEntry[]> {
      return withStore((store) => listBaseBackupEntries(store, input.systemIdentifier));
    },
  };
}

export type BaseBackupActivities = ReturnType<typeof createBaseBackupActivities>;
export type BaseBackupCatalogActivities = ReturnType<typeof createBaseBackupCatalogActivities>;
