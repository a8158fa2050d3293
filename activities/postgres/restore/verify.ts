import { FailureType, failure } from '../../../common/failures';
import { failpoint } from '../../failpoints';
import { loadManifest, withBackupStore } from '../../storage';
import { serverOf, withPg } from '../connection';
import { Context } from '@temporalio/activity';
import { withCounts, saveCounts } from './adopted-counts';
import { checkedName, compareWithManifest, databaseFacts } from './databases';
import { withRestoreProgress, type RestoreDeps } from './run';

/** Is the restored database what the backup holds, and does the planner know its data. */
export function createVerifyActivities(deps: RestoreDeps) {
  return {
    /** Compares a restored database with its backup's manifest; any difference fails with VerificationFailed. */
    async verifyRestoredDatabase(input: {
      database: string;
      backupId: string;
      extensions?: string[];
    }): Promise<{ tables: number; rows: number; checks: string }> {
      checkedName(input.database);
      const manifest = await withBackupStore(deps.storage, (store) => loadManifest(store, input.backupId));
      let current = '';
      const { facts, reference } = await withRestoreProgress(
        () => ({ phase: 'counting', table: current }),
        () =>
          withPg(serverOf(deps, input.database), input.database, (c1) =>
            withPg(serverOf(deps, input.database), input.database, async (c2) => {
              // Both counting sessions are open, nothing is counted yet: where a drill restarts the server.
              await failpoint('verify.before-compare');
              const facts = await databaseFacts([c1, c2], (t) => (current = t));
              // An adopted backup not yet counted: this restore counts it (adopted-counts.ts).
              const workflowId = Context.current().info.workflowExecution?.workflowId ?? '';
              return { facts, reference: await withCounts(c1, manifest, facts, workflowId) };
            }),
          ),
      );
      const problems = compareWithManifest(facts, reference, input.extensions);
      if (problems.length) {
        throw failure(
          FailureType.VerificationFailed,
          `database ${input.database} does not match backup ${input.backupId}: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? `; and ${problems.length - 10} more` : ''}`,
        );
      }
      if (reference !== manifest)
        await withBackupStore(deps.storage, (store) => saveCounts(store, reference));
      const leaves = [...facts.tables.values()].filter((t) => t.kind !== 'partitioned');
      return {
        tables: leaves.length,
        rows: leaves.reduce((s, t) => s + t.rows, 0),
        checks: `${facts.tables.size} tables with exact row counts${reference !== manifest ? ' (counted now: the adopted backup had none)' : ''}, schema version ${facts.schemaVersion ?? 'none'}, extensions [${facts.extensions.join(', ')}], no invalid indexes`,
      };
    },

    /** Fresh planner statistics after a restore whose archive carried none (before PostgreSQL 18). */
    async analyzeDatabase(input: { database: string }): Promise<{ durationMs: number }> {
      checkedName(input.database);
      const started = Date.now();
      await withRestoreProgress(
        () => ({ phase: 'analyze', elapsedMs: Date.now() - started }),
        () => withPg(serverOf(deps, input.database), input.database, (c) => c.query('ANALYZE')),
      );
      return { durationMs: Date.now() - started };
    },
  };
}
