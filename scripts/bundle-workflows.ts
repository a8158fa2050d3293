/**
 * Prebundles the workflow code into dist/workflow-bundle.js (run by `npm run build`), so a worker
 * starts without webpack: src/worker/create.ts loads the bundle when the file exists.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

// Same path as WORKFLOW_BUNDLE_PATH in src/worker/create.ts (not imported: that pulls in every activity).
const WORKFLOW_BUNDLE_PATH = path.join(__dirname, '..', 'dist', 'workflow-bundle.js');

async function main(): Promise<void> {
  const started = Date.now();
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error },
  });
  mkdirSync(path.dirname(WORKFLOW_BUNDLE_PATH), { recursive: true });
  writeFileSync(WORKFLOW_BUNDLE_PATH, code);
  console.error(
    `workflow bundle: ${path.relative(process.cwd(), WORKFLOW_BUNDLE_PATH)} (${Math.round(code.length / 1024)} KiB) in ${Date.now() - started} ms`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
