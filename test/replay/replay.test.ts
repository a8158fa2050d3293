/**
 * Replays every recorded history (test/fixtures/histories/<release>/) against the current workflow
 * code: a change that would break a run started by an earlier build, without a patch, fails here.
 * The histories come from real runs (`npm run histories:record`, see docs/upgrades.md); each
 * release's set stays until the patches it exercises are removed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker, type ReplayWorkerOptions } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { workflowSource } from '../../src/worker/create';
import { parseFixtureName, REQUIRED_BRANCHES } from './branches';
import { bundleChangedWorkflows } from './changed-build';
import { historyFromJson } from './history-json';

const ROOT = path.join(__dirname, '..', 'fixtures', 'histories');

interface Fixture {
  release: string;
  file: string;
  workflowType: string;
  branch: string;
}

const fixtures: Fixture[] = readdirSync(ROOT).flatMap((release) =>
  readdirSync(path.join(ROOT, release)).flatMap((file) => {
    const parsed = parseFixtureName(file);
    return parsed ? [{ release, file, ...parsed }] : [];
  }),
);

function load(f: Fixture) {
  return {
    workflowId: `${f.release}/${f.file}`,
    history: historyFromJson(readFileSync(path.join(ROOT, f.release, f.file), 'utf8')),
  };
}

/** Replays `list`; the failures by fixture (an empty map when every history replays). */
async function replay(options: ReplayWorkerOptions, list: Fixture[]): Promise<Map<string, Error>> {
  const failed = new Map<string, Error>();
  for await (const r of Worker.runReplayHistories(options, list.map(load))) {
    if (r.error) failed.set(r.workflowId, r.error);
  }
  return failed;
}

describe('recorded histories replay on the current workflow code', () => {
  it('every required workflow type and branch has a recorded history', () => {
    const have = new Set(fixtures.map((f) => `${f.workflowType}.${f.branch}`));
    const missing = REQUIRED_BRANCHES.filter((b) => !have.has(`${b.workflowType}.${b.branch}`)).map(
      (b) => `${b.workflowType}.${b.branch} (run npm run histories:record; produced by ${b.producedBy})`,
    );
    expect(missing).toEqual([]);
  });

  it.each(fixtures.map((f) => [`${f.release}/${f.file}`, f] as const))('%s', async (_name, f) => {
    const failed = await replay({ ...workflowSource(), replayName: 'dbops-replay' }, [f]);
    expect(failed.get(`${f.release}/${f.file}`)?.message).toBeUndefined();
  });
});

describe('a changed restore workflow (test/replay/changed-build.ts)', () => {
  const restores = fixtures.filter((f) => f.workflowType === 'restoreWorkflow');

  it('without patched() fails replay of every recorded restore that got past the policy', async () => {
    const codePath = await bundleChangedWorkflows('unpatched');
    const failed = await replay(
      { workflowBundle: { codePath }, replayName: 'dbops-replay-broken' },
      restores,
    );
    expect(restores.length).toBeGreaterThanOrEqual(4);
    expect([...failed.keys()].sort()).toEqual(restores.map((f) => `${f.release}/${f.file}`).sort());
    for (const err of failed.values()) expect(err.name).toBe('DeterminismViolationError');
  }, 120_000);

  it('with patched() replays them all', async () => {
    const codePath = await bundleChangedWorkflows('patched');
    const failed = await replay(
      { workflowBundle: { codePath }, replayName: 'dbops-replay-patched' },
      restores,
    );
    expect([...failed.entries()].map(([id, e]) => `${id}: ${e.message}`)).toEqual([]);
  }, 120_000);
});
