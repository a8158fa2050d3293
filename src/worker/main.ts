#!/usr/bin/env node
/**
 * The worker alone: `node dist/src/worker/main.js` runs exactly what `dbops worker` runs, without
 * loading the CLI's other commands (doctor, milvus, restore, … and the SDKs they import), so the
 * long-running process keeps only what the worker needs in memory. The k8s Deployment starts it.
 */
import { getConfig } from '../config';
import { reportError } from '../cli/output';
import { runWorker } from './run';

export async function main(): Promise<number> {
  try {
    await runWorker(getConfig());
    return 0;
  } catch (err) {
    return reportError(err);
  }
}

if (require.main === module) {
  void main().then((code) => {
    process.exitCode = code;
  });
}
