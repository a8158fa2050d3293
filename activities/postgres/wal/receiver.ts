import { spawn } from 'node:child_process';
import path from 'node:path';
import { exitOf, StderrTail } from '../dump-pipeline';

/**
 * pg_receivewal, streaming from the stream slot into the spool. Flags:
 * - `--synchronous`: flush each write and report the flush to the server at once, so the received
 *   position (pg_stat_replication.flush_lsn, the recovery point on the worker's disk) trails the
 *   server by milliseconds instead of up to the 10 s status interval.
 * - `--no-loop`: exit when the connection breaks instead of retrying forever unseen; the activity
 *   fails and Temporal retries it (with backoff, visible in the Web UI).
 * - `--no-password`: never prompt; the password comes from PGPASSWORD/PGPASSFILE in the env.
 * Host, port, user and TLS come from the libpq environment (pgChildEnv): nothing secret in argv.
 */
export function receiverArgs(spool: string, slot: string): string[] {
  return ['--directory', spool, '--slot', slot, '--synchronous', '--no-loop', '--no-password', '--verbose'];
}

export interface Receiver {
  /** Set once the child exited: its code/signal and the tail of its stderr. */
  readonly exit: { code: number | null; signal: string | null; stderr: string } | undefined;
  /** SIGINT (pg_receivewal stops cleanly, keeping its `.partial`), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  kill(): void;
}

export function startReceiver(o: {
  readonly binDir: string;
  readonly env: Record<string, string>;
  readonly spool: string;
  readonly slot: string;
  readonly onLine: (line: string) => void;
}): Receiver {
  const child = spawn(path.join(o.binDir, 'pg_receivewal'), receiverArgs(o.spool, o.slot), {
    env: o.env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const tail = new StderrTail();
  tail.attach(child.stderr, o.onLine);
  const state: { exit?: Receiver['exit'] } = {};
  const exited = exitOf(child).then(({ code, signal }) => {
    state.exit = { code, signal, stderr: tail.toString() };
  });
  return {
    get exit() {
      return state.exit;
    },
    async stop(graceMs = 10_000) {
      if (state.exit) return;
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
    kill() {
      if (!state.exit) child.kill('SIGKILL');
    },
  };
}
