import { DefaultLogger, Runtime } from '@temporalio/worker';

// Workers in tests log only warnings and errors; each vitest fork installs the runtime once.
try {
  Runtime.install({ logger: new DefaultLogger('WARN') });
} catch {
  // already installed in this process
}
