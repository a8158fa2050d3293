import type { WorkerLogger } from './logging';

/** The SDK runtime's default shutdown signals (Runtime.install's shutdownSignals). */
const SHUTDOWN_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGQUIT', 'SIGUSR2'];

/**
 * Keeps the graceful stop when a signal arrives while a child process runs (pg_dump, zstd, psql).
 * execa loads signal-exit, which re-raises a signal when no other listener for it is left. The SDK's
 * runtime removes its own listener as it starts the shutdown, in the same dispatch, so signal-exit
 * saw none and the first SIGTERM during a dump killed the worker at once (drill 16 found it: the
 * worker died 0.06 s after SIGTERM instead of finishing the dump). This listener stays for the
 * worker's life: the first signal is logged (the SDK does the stop); a second one exits at once, as
 * a second Ctrl-C should. Returns a function that removes it.
 */
export function holdShutdownSignals(log: WorkerLogger, graceSeconds: number): () => void {
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (received === undefined) {
      received = signal;
      log.info(
        `${signal}: stopping; running activities get ${graceSeconds} s to finish, then they are cancelled, clean up, and Temporal runs them again on another worker`,
        { signal },
      );
      return;
    }
    log.warn(
      `second signal (${signal}): exiting now; running activities are retried after their heartbeat timeout`,
      {
        signal,
      },
    );
    release();
    process.kill(process.pid, signal);
  };
  const release = () => {
    for (const s of SHUTDOWN_SIGNALS) process.off(s, onSignal);
  };
  for (const s of SHUTDOWN_SIGNALS) process.on(s, onSignal);
  return release;
}
