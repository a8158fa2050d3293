import { Context } from '@temporalio/activity';
import { preRestoreDatabaseName, type RollbackInput, type RollbackResult } from '../../../common/restore';
import { withPg } from '../connection';
import { checkedName, swapDatabases, type SwapResult } from './databases';
import type { RestoreDeps } from './run';

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
      const result = await swapDatabases(deps.pg, {
        target: input.target,
        incoming: input.shadow,
        outgoing: input.preRestore,
        comment: {
          dbops: 'pre_restore',
          target: input.target,
          workflowId: input.workflowId,
          keepUntil: input.keepUntil,
        },
      });
      Context.current().log.info('restore cut-over', { target: input.target, ...result });
      return result;
    },

    /** Swaps the kept pre-restore database back in; the restored one is kept in turn under a new pre-restore name. */
    async rollbackRestore(
      input: RollbackInput & { workflowId: string; now: string },
    ): Promise<RollbackResult> {
      checkedName(input.target);
      checkedName(input.preRestoreDatabase);
      const replacedKeptAs = preRestoreDatabaseName(input.target, new Date(input.now));
      const keepUntil = new Date(Date.parse(input.now) + input.keepDays * 86_400_000).toISOString();
      const r = await swapDatabases(deps.pg, {
        target: input.target,
        incoming: input.preRestoreDatabase,
        outgoing: replacedKeptAs,
        comment: { dbops: 'pre_restore', target: input.target, workflowId: input.workflowId, keepUntil },
      });
      return {
        target: input.target,
        restoredFrom: input.preRestoreDatabase,
        replacedKeptAs,
        cutoverMs: r.cutoverMs,
      };
    },
  };
}
