/**
 * The one builder of Temporal Web UI links, for the CLI (from its config) and for workflows (from
 * `uiUrl` in their input and workflowInfo()): workflows cannot read the worker's settings, and an
 * activity call just to format a string would cost a history event.
 */
export function workflowRunUrl(uiUrl: string, namespace: string, workflowId: string, runId?: string): string {
  const base = `${uiUrl.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId ? `${base}/${encodeURIComponent(runId)}/history` : base;
}
