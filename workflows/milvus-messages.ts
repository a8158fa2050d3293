import { defineQuery } from '@temporalio/workflow';

/** Where a Milvus maintenance run is; answered by `milvusMaintenanceProgressQuery`. */
export interface MilvusMaintenanceProgress {
  readonly collection: string;
  readonly phase:
    | 'starting'
    | 'stats-before'
    | 'flush'
    | 'compact'
    | 'waiting-compaction'
    | 'stats-after'
    /** Deleted rows still pending purge after a round: a durable timer before the next flush + compaction. */
    | 'waiting-round'
    | 'advise'
    | 'rebuild-index'
    | 'notify'
    | 'done'
    | 'failed';
  /** Flush + compaction round, from 1 (0 before the first). */
  readonly round: number;
  /** The current round's compaction. */
  readonly compactionId: string | null;
  readonly compactionPolls: number;
  readonly executingPlans: number;
  readonly completedPlans: number;
  /** Persisted rows − live entities after the latest round; null before one or when unknown. */
  readonly pendingDeletedRows: number | null;
}

export const milvusMaintenanceProgressQuery =
  defineQuery<MilvusMaintenanceProgress>('milvusMaintenanceProgress');
