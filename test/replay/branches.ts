/**
 * Which recorded histories the replay test must have: one per workflow type and branch that
 * matters for an upgrade, each with the test file whose real run produces it (the recorder runs
 * exactly those files). One definition for the recorder (record.ts), its command (record-command.ts)
 * and the replay test.
 */
import { temporal } from '@temporalio/proto';
import type { History } from '@temporalio/common/lib/proto-utils';

const EventType = temporal.api.enums.v1.EventType;

export interface RequiredBranch {
  readonly workflowType: string;
  /** The branch name as branchOf() gives it. */
  readonly branch: string;
  readonly producedBy: string;
}

export const REQUIRED_BRANCHES: readonly RequiredBranch[] = [
  { workflowType: 'backupWorkflow', branch: 'succeeded', producedBy: 'test/integration/backup.test.ts' },
  { workflowType: 'backupWorkflow', branch: 'failed', producedBy: 'test/integration/backup-ops.test.ts' },
  {
    workflowType: 'backupWorkflow',
    branch: 'cancelled',
    producedBy: 'test/integration/backup-faults.test.ts',
  },
  { workflowType: 'verifyBackupWorkflow', branch: 'passed', producedBy: 'test/integration/verify.test.ts' },
  { workflowType: 'verifyBackupWorkflow', branch: 'failed', producedBy: 'test/integration/verify.test.ts' },
  { workflowType: 'restoreWorkflow', branch: 'restored', producedBy: 'test/integration/restore.test.ts' },
  { workflowType: 'restoreWorkflow', branch: 'rejected', producedBy: 'test/integration/restore.test.ts' },
  { workflowType: 'restoreWorkflow', branch: 'dry-run', producedBy: 'test/integration/restore.test.ts' },
  {
    workflowType: 'restoreWorkflow',
    branch: 'timed-out',
    producedBy: 'test/integration/restore-timeout.test.ts',
  },
  {
    workflowType: 'restoreRollbackWorkflow',
    branch: 'completed',
    producedBy: 'test/integration/restore.test.ts',
  },
  { workflowType: 'targetLockWorkflow', branch: 'completed', producedBy: 'test/integration/restore.test.ts' },
  {
    workflowType: 'milvusMaintenanceWorkflow',
    branch: 'completed',
    producedBy: 'test/integration/milvus-maintenance.test.ts',
  },
  {
    workflowType: 'milvusRepairWorkflow',
    branch: 'completed',
    producedBy: 'test/drills/milvus-repair.test.ts',
  },
  {
    workflowType: 'partitionMaintenanceWorkflow',
    branch: 'completed',
    producedBy: 'test/integration/partitions.test.ts',
  },
  // Point-in-time recovery: the archiver runs for weeks, across every upgrade.
  {
    workflowType: 'walArchiverWorkflow',
    branch: 'completed',
    producedBy: 'test/integration/wal-archiver.test.ts',
  },
  {
    workflowType: 'baseBackupWorkflow',
    branch: 'completed',
    producedBy: 'test/integration/basebackup-retention.test.ts',
  },
  {
    workflowType: 'pointInTimeRestoreWorkflow',
    branch: 'restored',
    producedBy: 'test/drills/pitr.test.ts',
  },
];

/** `<workflowType>.<branch>.json`: the fixture file of one branch. */
export function fixtureName(workflowType: string, branch: string): string {
  return `${workflowType}.${branch}.json`;
}

export function parseFixtureName(file: string): { workflowType: string; branch: string } | undefined {
  const m = /^([A-Za-z0-9]+)\.([a-z0-9-]+)\.json$/.exec(file);
  return m ? { workflowType: m[1]!, branch: m[2]! } : undefined;
}

type Event = NonNullable<History['events']>[number];

function decodeJson(payloads: { data?: Uint8Array | null }[] | null | undefined): unknown {
  const data = payloads?.[0]?.data;
  if (!data) return undefined;
  try {
    return JSON.parse(Buffer.from(data).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * The branch a closed run took, from its history's last event: a completed run's result names it
 * (`outcome` of backups and restores, `status` of verifications), else `completed`; `failed`,
 * `cancelled`, `terminated`, `timed-out-run`, `continued-as-new` otherwise. undefined while running.
 */
export function branchOf(history: History): { workflowType: string; branch: string } | undefined {
  const events = history.events ?? [];
  const first: Event | undefined = events[0];
  const last: Event | undefined = events[events.length - 1];
  const workflowType = first?.workflowExecutionStartedEventAttributes?.workflowType?.name;
  if (!workflowType || !last) return undefined;
  const closed: Partial<Record<number, string>> = {
    [EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED]: 'failed',
    [EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED]: 'cancelled',
    [EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED]: 'terminated',
    [EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT]: 'timed-out-run',
    [EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW]: 'continued-as-new',
  };
  if (last.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED) {
    const result = decodeJson(last.workflowExecutionCompletedEventAttributes?.result?.payloads);
    const named =
      result && typeof result === 'object'
        ? ((result as { outcome?: unknown }).outcome ?? (result as { status?: unknown }).status)
        : undefined;
    const branch = typeof named === 'string' && /^[a-z0-9-]+$/.test(named) ? named : 'completed';
    return { workflowType, branch };
  }
  const branch = closed[last.eventType ?? -1];
  return branch ? { workflowType, branch } : undefined;
}
