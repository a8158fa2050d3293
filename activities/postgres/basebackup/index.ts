import { Context } from '@temporalio/activity';
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
import { type BaseBackupPruneResult, type BaseBackupRetentionPolicy, pruneBaseBackups } from './retention';
import { type BaseBackupDeps, refuseEncryption, takeBaseBackup, type TakeBaseBackupInput } from './take';
import { verifyBaseBackup, type VerifyBaseBackupInput } from './verify';

export type { BaseBackupDeps } from './take';
export { listBaseBackupEntries } from './catalog';
export { inspectCluster } from './cluster';
export type { BaseBackupPruneResult } from './retention';

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

/**
 * Base backups, short half: what the server and the store say, the manifest, cleanup, retention
 * (main worker). Retention's policy is the worker's (`retention`), never the caller's.
 */
export function createBaseBackupCatalogActivities(
  deps: BaseBackupDeps & { readonly retention: BaseBackupRetentionPolicy },
) {
  const withStore = <T>(fn: Parameters<typeof withBackupStore<T>>[1]) =>
    withBackupStore(deps.storage, fn).catch(asInputFailure);
  return {
    /**
     * The cluster to back up and, for an incremental backup, the backup it builds on. Refuses an
     * incremental one the server cannot take (summarize_wal off) or that has nothing to build on.
     */
    /**
     * What to take: the cluster, and an incremental backup's parent. `fallBackToFull` (scheduled
     * runs): with no full backup to build on, a full one is taken instead, as pgBackRest does, so a
     * schedule turned on mid-week does not fail every night until its full day.
     */
    async planBaseBackup(input: { kind: BaseBackupKind; fallBackToFull?: boolean }): Promise<{
      systemIdentifier: string;
      serverVersion: string;
      serverMajor: number;
      kind: BaseBackupKind;
      parent?: BaseBackupManifest;
    }> {
      refuseEncryption(deps.storage);
      const cluster = await inspectCluster(deps.pg);
      const base = {
        systemIdentifier: cluster.systemIdentifier,
        serverVersion: cluster.serverVersion,
        serverMajor: cluster.major,
      };
      if (input.kind === 'full') return { ...base, kind: 'full' };
      const problem = incrementalProblem(deps.pg, cluster);
      if (problem) throw failure(FailureType.Misconfigured, problem);
      const parent = await withStore((store) => parentForIncremental(store, cluster.systemIdentifier)).catch(
        (err: unknown) => {
          if (input.fallBackToFull && (err as { type?: string }).type === FailureType.Refused)
            return undefined;
          throw err;
        },
      );
      if (!parent) {
        Context.current().log.warn('no full base backup to build on: taking a full one instead', {
          systemIdentifier: cluster.systemIdentifier,
        });
        return { ...base, kind: 'full' };
      }
      return { ...base, kind: 'incremental', parent };
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
    /**
     * Base backup retention of one cluster (retention.ts). Deleting a week of WAL from S3 takes
     * minutes: it heartbeats (the workflow runs it with the streaming profile), and a retry picks
     * up where the last attempt stopped.
     */
    async pruneBaseBackups(input: { systemIdentifier: string }): Promise<BaseBackupPruneResult> {
      const ctx = Context.current();
      return withStore((store) =>
        pruneBaseBackups(store, input.systemIdentifier, deps.retention, new Date(), (p) => ctx.heartbeat(p)),
      );
    },
  };
}

export type BaseBackupActivities = ReturnType<typeof createBaseBackupActivities>;
export type BaseBackupCatalogActivities = ReturnType<typeof createBaseBackupCatalogActivities>;
