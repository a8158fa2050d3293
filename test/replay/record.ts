/**
 * Recording histories of real runs for the replay test (test/replay/replay.test.ts). When the test
 * run is started with DBOPS_RECORD_HISTORIES=<folder> (`npm run histories:record` does it), the
 * run's global teardown calls collectHistories before it deletes the run's namespace: every closed
 * run is classified by branches.ts, the longest history of each branch is written to the folder.
 * Runs on another server (the time-skipping test server) hand theirs in with stageHistory.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import type { History } from '@temporalio/common/lib/proto-utils';
import { buildInfo } from '../../src/build-info';
import { branchOf, fixtureName } from './branches';
import { historyFromJson, historyToJson } from './history-json';

/** Set by test/global-setup.ts in a recording run: where test files stage histories from other servers. */
export const RECORD_STAGING_ENV = 'DBOPS_RECORD_STAGING';

/** Hands a finished run's history to the recorder (no-op unless this test run records). */
export async function stageHistory(handle: WorkflowHandle): Promise<void> {
  const staging = process.env[RECORD_STAGING_ENV];
  if (!staging) return;
  const history = await handle.fetchHistory();
  writeFileSync(path.join(staging, `${randomBytes(6).toString('hex')}.json`), historyToJson(history));
}

interface Candidate {
  workflowId: string;
  history: History;
}

async function closedRuns(address: string, namespace: string): Promise<Candidate[]> {
  const connection = await Connection.connect({ address });
  try {
    const client = new Client({ connection, namespace });
    const out: Candidate[] = [];
    for await (const run of client.workflow.list({ query: 'ExecutionStatus != "Running"' })) {
      const history = await client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
      out.push({ workflowId: run.workflowId, history });
    }
    return out;
  } finally {
    await connection.close();
  }
}

function staged(dir: string): Candidate[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({
      workflowId: f,
      history: historyFromJson(readFileSync(path.join(dir, f), 'utf8')),
    }));
}

export interface Recorded {
  file: string;
  workflowId: string;
  events: number;
}

/**
 * Writes one history per branch into `outDir` (the longest run of each branch: it exercises the
 * most code), leaving branches this run did not produce as they were, and notes the build and date
 * of each in `outDir/recorded.json`.
 */
export async function collectHistories(opts: {
  address: string;
  namespace: string;
  staging: string;
  outDir: string;
}): Promise<Recorded[]> {
  const candidates = [...(await closedRuns(opts.address, opts.namespace)), ...staged(opts.staging)];
  const best = new Map<string, Candidate>();
  for (const c of candidates) {
    const branch = branchOf(c.history);
    if (!branch) continue;
    const file = fixtureName(branch.workflowType, branch.branch);
    const held = best.get(file);
    if (!held || (c.history.events?.length ?? 0) > (held.history.events?.length ?? 0)) best.set(file, c);
  }
  mkdirSync(opts.outDir, { recursive: true });
  const indexFile = path.join(opts.outDir, 'recorded.json');
  let index: Record<string, unknown> = {};
  try {
    index = JSON.parse(readFileSync(indexFile, 'utf8')) as Record<string, unknown>;
  } catch {
    index = {};
  }
  const recorded: Recorded[] = [];
  const at = new Date().toISOString();
  for (const [file, c] of [...best].sort(([a], [b]) => a.localeCompare(b))) {
    writeFileSync(path.join(opts.outDir, file), `${historyToJson(c.history)}\n`);
    const events = c.history.events?.length ?? 0;
    index[file] = { build: buildInfo().id, recordedAt: at, workflowId: c.workflowId, events };
    recorded.push({ file, workflowId: c.workflowId, events });
  }
  const sorted = Object.fromEntries(Object.entries(index).sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(indexFile, `${JSON.stringify(sorted, null, 2)}\n`);
  return recorded;
}
