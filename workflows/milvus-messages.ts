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
    | 'advise'
    | 'rebuild-index'
    | 'notify'
    | 'done'
    | 'failed';
  readonly compactionId: string | null;
  readonly compactionPolls: number;
  readonly executingPlans: number;
  readonly completedPlans: number;
}

export const milvusMaintenanceProgressQuery =
  defineQuery<MilvusMaintenanceProgress>('milvusMaintenanceProgress');
