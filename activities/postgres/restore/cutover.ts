import { Context } from '@temporalio/activity';
import { preRestoreDatabaseName, type RollbackInput, type RollbackResult } from '../../../common/restore';
import { withPg } from '../connection';
import { checkedName } from './databases';
import { withRestoreProgress, type RestoreDeps } from './run';
import { type CutOverState, settleCutOver, swapDatabases, type SwapResult } from './swap';

/**
 * Heartbeats while the cut-over runs: a worker that dies with the target blocked is noticed within
 * the cutover profile's heartbeat timeout, and the retry lets connections in again in seconds.
 */
function withCutOverHeartbeat<T>(fn: () => Promise<T>): Promise<T> {
  return withRestoreProgress(() => ({ phase: 'cut-over' }), fn);
}

/** The target: what it is now, the swap that replaces it (the old one kept), and the swap back. */
export function createCutOverActivities(deps: RestoreDeps) {
  return {
    async describeDatabase(input: { name: string }): Promise<{ exists: boolean; sizeBytes: number | null }> {
      checkedName(input.name);
      return withPg(deps.pg, undefined, async (c) => {
        const r = await c.query<{ size: string }>(
          'SELECT pg_database_size(oid)::int8 AS size FROM pg_database WHERE datname = $1',
          [input.name],
        );
        return r.rowCount
          ? { exists: true, sizeBytes: Number(r.rows[0]!.size) }
          : { exists: false, sizeBytes: null };
      });
    },

    /** Cut-over: target → pre-restore, shadow → target, in one transaction (idempotent). */
    async swapInRestoredDatabase(input: {
      target: string;
      shadow: string;
      preRestore: string;
      workflowId: string;
      keepUntil: string;
    }): Promise<SwapResult> {
      const result = await withCutOverHeartbeat(() =>
        swapDatabases(deps.pg, {
          target: input.target,
          incoming: input.shadow,
          outgoing: input.preRestore,
          workflowId: input.workflowId,
          incomingMark: { dbops: 'restore', workflowId: input.workflowId },
          keepUntil: input.keepUntil,
        }),
      );
      Context.current().log.info('restore cut-over', { target: input.target, ...result });
      return result;
    },

    /** After a failed or cancelled cut-over: connections let in again, and whether the swap committed. */
    async settleRestoreCutOver(input: {
      target: string;
      shadow: string;
      preRestore: string;
      workflowId: string;
    }): Promise<CutOverState> {
      const state = await settleCutOver(deps.pg, {
        target: input.target,
        incoming: input.shadow,
        outgoing: input.preRestore,
        workflowId: input.workflowId,
      });
      Context.current().log.info('restore cut-over settled', { target: input.target, ...state });
      return state;
    },

    /** Swaps the kept pre-restore database back in; the restored one is kept in turn under a new pre-restore name. */
    async rollbackRestore(
      input: Pick<RollbackInput, 'target' | 'preRestoreDatabase' | 'restoreWorkflowId'> & {
        keepDays: number;
        workflowId: string;
        now: string;
      },
    ): Promise<RollbackResult> {
      checkedName(input.target);
      checkedName(input.preRestoreDatabase);
      const replacedKeptAs = preRestoreDatabaseName(input.target, new Date(input.now));
      const keepUntil = new Date(Date.parse(input.now) + input.keepDays * 86_400_000).toISOString();
      const r = await withCutOverHeartbeat(() =>
        swapDatabases(deps.pg, {
          target: input.target,
          incoming: input.preRestoreDatabase,
          outgoing: replacedKeptAs,
          workflowId: input.workflowId,
          // Only the copy that restore kept (its mark names the restore), never a look-alike name.
          incomingMark: { dbops: 'pre_restore', workflowId: input.restoreWorkflowId },
          keepUntil,
        }),
      );
      return {
        target: input.target,
        restoredFrom: input.preRestoreDatabase,
        replacedKeptAs,
        cutoverMs: r.cutoverMs,
      };
    },
  };
}
