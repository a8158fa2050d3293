/**
 * A "next release" of the workflow code whose restore workflow changed: a copy of workflows/ and
 * common/ with one step added before the approval wait (after the policy is read), bundled like
 * the worker's code. `patched` guards the step with patched(); `unpatched` adds it bare, the
 * mistake the replay test and the upgrade drill must catch. Used by test/replay/replay.test.ts and
 * the upgrade drill (test/drills/upgrade.test.ts).
 */
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../../src/config';
import { bundleWorkflows } from '../../src/worker/bundle';

export type ChangedVariant = 'patched' | 'unpatched';

/** The patch id of the drill's change (the marker a patched run records in its history). */
export const DRILL_PATCH_ID = 'dbops-upgrade-drill-extra-step';

const FILE = path.join('workflows', 'restore', 'index.ts');
const IMPORT = "import { CancellationScope } from '@temporalio/workflow';";
const ANCHOR = '  await applyPolicy(run);\n';

/** The changed source of workflows/restore/index.ts; throws when the anchors moved (update this file). */
export function changedRestoreSource(source: string, variant: ChangedVariant): string {
  if (!source.includes(IMPORT) || source.split(ANCHOR).length !== 2) {
    throw new Error(
      `${FILE} changed: test/replay/changed-build.ts needs its import line and one "${ANCHOR.trim()}"`,
    );
  }
  // The new step: a one-second durable timer, a command the old code never issued at this point.
  const step =
    variant === 'patched'
      ? `  if (patched('${DRILL_PATCH_ID}')) await sleep('1 second');\n`
      : "  await sleep('1 second');\n";
  return source
    .replace(IMPORT, "import { CancellationScope, patched, sleep } from '@temporalio/workflow';")
    .replace(ANCHOR, `${ANCHOR}${step}`);
}

/** Bundles the changed workflow code into a file of its own; returns that file's path. */
export async function bundleChangedWorkflows(variant: ChangedVariant, dir = os.tmpdir()): Promise<string> {
  const root = path.join(dir, `dbops-changed-${variant}-${randomBytes(4).toString('hex')}`);
  mkdirSync(root, { recursive: true });
  for (const folder of ['workflows', 'common'])
    cpSync(path.join(REPO_ROOT, folder), path.join(root, folder), { recursive: true });
  // Package imports (@temporalio/workflow, zod) resolve from the checkout's node_modules.
  symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(root, 'node_modules'), 'dir');
  const file = path.join(root, FILE);
  writeFileSync(file, changedRestoreSource(readFileSync(file, 'utf8'), variant));
  const code = await bundleWorkflows({ workflowsDir: path.join(root, 'workflows') });
  const out = path.join(root, 'workflow-bundle.js');
  writeFileSync(out, code);
  return out;
}
