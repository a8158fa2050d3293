import { existsSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, type WorkerOptions } from '@temporalio/worker';
import { REPO_ROOT } from '../config';

/**
 * What the workflow code of a dbops worker is: the one definition for the three places it is
 * bundled or loaded (the prebundle of `npm run build`, scripts/bundle-workflows.ts; the test run's
 * bundle, test/global-setup.ts; a worker bundling from source, ./create.ts). Light on purpose: the
 * build script imports it, and must not load the activities.
 */

/** Prebundled workflow code, written by `npm run build` next to the compiled worker. */
export const WORKFLOW_BUNDLE_PATH = path.join(REPO_ROOT, 'dist', 'workflow-bundle.js');

/** `file` + .ts when running from source (tsx, vitest), + .js when running the build. */
export function resolveSource(file: string): string {
  const ts = `${file}.ts`;
  return existsSync(ts) ? ts : `${file}.js`;
}

const WORKFLOWS_DIR = path.join(__dirname, '..', '..', 'workflows');

/** Every workflow dbops runs. */
export const WORKFLOWS_PATH = resolveSource(path.join(WORKFLOWS_DIR, 'index'));
/**
 * Workflow interceptors: the outcome of every run, reported to the worker's metrics; the run's
 * attempt on every workflow log line.
 */
const INTERCEPTORS = ['outcomes', 'log-attributes'];
const interceptorModules = (dir: string) => INTERCEPTORS.map((m) => resolveSource(path.join(dir, m)));
export const WORKFLOW_INTERCEPTOR_MODULES: readonly string[] = interceptorModules(WORKFLOWS_DIR);

/** Worker options that bundle the workflows from source at Worker.create. */
export function workflowsFromSource(): Pick<WorkerOptions, 'workflowsPath' | 'interceptors'> {
  return {
    workflowsPath: WORKFLOWS_PATH,
    interceptors: { workflowModules: [...WORKFLOW_INTERCEPTOR_MODULES] },
  };
}

/**
 * The bundle of the same workflows for workers with DBOPS_PAYLOAD_KEYS set: its workflow code
 * converts failures with src/codec/sealed-failures.ts (message and stack trace encrypted), which
 * a bundle must carry inside, so each prebundle has this sibling.
 */
export function sealedBundlePath(bundlePath: string): string {
  return bundlePath.replace(/(\.js)?$/, '.sealed.js');
}

export interface BundleOptions {
  /** Another copy of workflows/ (a changed build in the upgrade tests). */
  workflowsDir?: string;
  /** The failure converter module the workflow code uses (src/codec/data-converter.ts); default Temporal's. */
  failureConverterPath?: string;
}

/** Bundles the workflows with their interceptors (webpack: seconds); returns the bundle's code. */
export async function bundleWorkflows(opts: BundleOptions = {}): Promise<string> {
  const { workflowsDir, failureConverterPath } = opts;
  const { code } = await bundleWorkflowCode({
    workflowsPath: workflowsDir ? resolveSource(path.join(workflowsDir, 'index')) : WORKFLOWS_PATH,
    workflowInterceptorModules: workflowsDir
      ? interceptorModules(workflowsDir)
      : [...WORKFLOW_INTERCEPTOR_MODULES],
    ...(failureConverterPath ? { failureConverterPath } : {}),
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error },
  });
  return code;
}
