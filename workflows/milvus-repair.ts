import { log } from '@temporalio/workflow';
import type { MilvusActivities } from '../activities/milvus';
import type { CollectionKind } from '../activities/milvus/collections';
import type { ConsistencyReport } from '../activities/milvus/consistency';
import { failure, FailureType } from '../common/failures';
import {
  confirmDeleteProblem,
  DEFAULT_MAX_DELETE_SHARE,
  deleteDecision,
  maxDeleteShareProblem,
  percent,
} from '../common/milvus-repair';
import { assertDatabaseName, InputError } from '../common/names';
import { activitiesWith } from './activity-profiles';

export interface MilvusRepairInput {
  readonly kind: CollectionKind;
  readonly collection: string;
  /** PostgreSQL database holding the embedding tables: the source of truth for the ids. */
  readonly database: string;
  /** Delete at most this share of the collection's entities without confirmation (default 0.1). */
  readonly maxDeleteShare?: number;
  /** The typed confirmation of a larger deletion: must equal the number of orphans the check finds. */
  readonly confirmDelete?: number;
  /** Rows per upsert/delete batch (default 500). */
  readonly batchSize?: number;
  /** Tighter activity retries (tests). */
  readonly maximumAttempts?: number;
}

export interface MilvusRepairResult {
  readonly collection: string;
  readonly database: string;
  readonly before: ConsistencyReport;
  readonly upserted: number;
  readonly deleted: number;
  /** Compared again after the repair (Strong reads): what Milvus holds now. */
  readonly after: ConsistencyReport;
  /** The deletion was above the cap and allowed by `confirmDelete`. */
  readonly confirmed: boolean;
  readonly durationMs: number;
  readonly summary: string;
}

function checkInput(input: MilvusRepairInput): void {
  const share = input.maxDeleteShare ?? DEFAULT_MAX_DELETE_SHARE;
  const shareProblem = maxDeleteShareProblem(share);
  if (shareProblem) throw failure(FailureType.InvalidInput, `maxDeleteShare ${share}: ${shareProblem}`);
  const confirmProblem =
    input.confirmDelete === undefined ? undefined : confirmDeleteProblem(input.confirmDelete);
  if (confirmProblem)
    throw failure(FailureType.InvalidInput, `confirmDelete ${input.confirmDelete}: ${confirmProblem}`);
  const batch = input.batchSize ?? 500;
  if (!Number.isInteger(batch) || batch < 1 || batch > 10_000)
    throw failure(FailureType.InvalidInput, `batch size ${batch}: must be an integer 1..10000`);
  try {
    assertDatabaseName(input.database, 'PostgreSQL database');
  } catch (err) {
    if (err instanceof InputError) throw failure(FailureType.InvalidInput, err.message);
    throw err;
  }
}

/**
 * `dbops milvus check --fix` as a workflow (one per collection at a time, visible in the Web UI):
 * compare the ids in PostgreSQL with the ids in Milvus → decide the deletion with the one rule in
 * common/milvus-repair.ts (at most a share of the collection, unless the operator typed the exact
 * orphan count) → refuse, having changed nothing, or upsert the missing vectors and delete the
 * orphans; the repair activity re-checks and refuses when it finds more orphans than allowed here.
 */
export async function milvusRepairWorkflow(input: MilvusRepairInput): Promise<MilvusRepairResult> {
  const started = Date.now();
  checkInput(input);
  const { collection, database, kind } = input;
  const retry = input.maximumAttempts ? { retry: { maximumAttempts: input.maximumAttempts } } : {};
  const streaming = (summary: string) => activitiesWith<MilvusActivities>('streaming', { summary, ...retry });

  const before = await streaming(`compare ids of ${collection} with ${database}`).milvusCheckConsistency({
    kind,
    collection,
    database,
  });
  const orphans = before.orphaned.count;
  const decision = deleteDecision({
    collection,
    database,
    orphans,
    entities: before.milvusIds,
    maxDeleteShare: input.maxDeleteShare ?? DEFAULT_MAX_DELETE_SHARE,
    confirmDelete: input.confirmDelete,
  });
  if (!decision.allowed) {
    const message = `refused, nothing changed: ${decision.reason}`;
    log.warn(message);
    throw failure(FailureType.Refused, message, before);
  }

  let repaired = { upserted: 0, deleted: 0, after: before };
  if (orphans > 0 || before.missing.count > 0) {
    repaired = await streaming(
      `repair ${collection}: upsert ${before.missing.count}, delete ${orphans} orphans ` +
        `(${percent(orphans, before.milvusIds)}${decision.confirmed ? ', confirmed' : ''})`,
    ).milvusRepairConsistency({
      kind,
      collection,
      database,
      maxDeletes: decision.maxDeletes,
      batchSize: input.batchSize,
    });
  }
  const { after } = repaired;
  const summary =
    `Milvus repair of ${collection} from ${database}: upserted ${repaired.upserted}, deleted ` +
    `${repaired.deleted} of ${before.milvusIds} entities${decision.confirmed ? ' (confirmed)' : ''}; now ` +
    `${after.milvusIds} entities, ${after.missing.count} missing, ${after.orphaned.count} orphaned`;
  log.info(summary);
  return {
    collection,
    database,
    before,
    upserted: repaired.upserted,
    deleted: repaired.deleted,
    after,
    confirmed: decision.confirmed,
    durationMs: Date.now() - started,
    summary,
  };
}
