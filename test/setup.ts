import { DefaultLogger, Runtime } from '@temporalio/worker';
import { register } from 'tsx/cjs/api';

// Workers in tests log only warnings and errors; each vitest fork installs the runtime once.
try {
  Runtime.install({ logger: new DefaultLogger('WARN') });
} catch {
  // already installed in this process
}

// Temporal loads a failure converter by path with Node's own require (src/codec/data-converter.ts):
// in-process workers and clients with DBOPS_PAYLOAD_KEYS require a .ts module, as tsx does for the CLI.
register();
