import type { Client } from '@temporalio/client';
import type { RestoreStatus } from '../../common/restore';
import { restoreStatusQuery } from '../../workflows/restore-messages';
import { DBOPS_BACKUP_ID, DBOPS_DATABASE } from '../../common/search-attributes';

export interface RestoreListRow {
  readonly workflowId: string;
  readonly status: string;
  readonly phase: string;
  readonly target: string;
  readonly backup: string;
  readonly waitingSince: string | null;
  readonly started: string;
}

/** Enough for an operator's screen; the Web UI lists every run. */
const MAX_ROWS = 200;

/** Restores (by search attribute), pending approvals first, then the newest. */
export async function listRestores(client: Client): Promise<RestoreListRow[]> {
  const rows: RestoreListRow[] = [];
  for await (const wf of client.workflow.list({ query: "DbopsOperation = 'restore'" })) {
    let s: RestoreStatus | undefined;
    if (wf.status.name === 'RUNNING')
      s = await client.workflow
        .getHandle(wf.workflowId)
        .query(restoreStatusQuery)
        .catch(() => undefined);
    rows.push({
      workflowId: wf.workflowId,
      status: wf.status.name,
      phase: s?.phase ?? '',
      target: String(wf.typedSearchAttributes.get(DBOPS_DATABASE) ?? ''),
      backup: String(wf.typedSearchAttributes.get(DBOPS_BACKUP_ID) ?? ''),
      waitingSince: s?.phase === 'awaiting-approval' ? s.waitingSince : null,
      started: wf.startTime.toISOString(),
    });
    if (rows.length >= MAX_ROWS) break;
  }
  return rows.sort(
    (a, b) =>
      Number(Boolean(b.waitingSince)) - Number(Boolean(a.waitingSince)) || (a.started < b.started ? 1 : -1),
  );
}
