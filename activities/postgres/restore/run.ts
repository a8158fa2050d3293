import { spawn } from 'node:child_process';
import { pipeline } from 'node:stream/promises';
import type { Readable, Writable } from 'node:stream';
import { FailureType, failure } from '../../../common/failures';
import type { StorageSettings } from '../../storage';
import { resolvePgBinaries, type PgBinaries } from '../binaries';
import { serverMajorVersion, withPg, type PgConnectionSettings } from '../connection';
import { exitOf, StderrTail } from '../dump-pipeline';
import { withProgress } from '../progress';

/** What the restore activities are built from: worker settings, never workflow arguments. */
export interface RestoreDeps {
  readonly pg: PgConnectionSettings;
  readonly storage: StorageSettings;
  /** Folder for the seekable temporary archive; default os.tmpdir(). */
  readonly tempDir?: string;
}

const HEARTBEAT_MS = 2000;

/** Heartbeats every 2 s and kills the restore's children on cancellation (see ../progress.ts). */
export function withRestoreProgress<T>(
  progress: () => Record<string, unknown>,
  fn: (kills: (() => void)[]) => Promise<T>,
): Promise<T> {
  return withProgress({ everyMs: HEARTBEAT_MS, cancelled: 'restore cancelled' }, progress, fn);
}

/** The server's major version and client tools at least that new (pg_restore, psql). */
export async function serverBinaries(
  pg: PgConnectionSettings,
): Promise<{ bins: PgBinaries; serverMajor: number }> {
  return withPg(pg, undefined, async (c) => {
    const serverMajor = await serverMajorVersion(c);
    return { serverMajor, bins: await resolvePgBinaries(pg.binDir, serverMajor) };
  });
}

/** Runs a tool to its end (stdin fed from `stdin` when given); a non-zero exit is ProcessFailed with its stderr. */
export async function runTool(
  file: string,
  args: string[],
  env: Record<string, string>,
  stdin: Readable | undefined,
  kills: (() => void)[],
  what: string,
): Promise<void> {
  const child = spawn(file, args, { env, stdio: [stdin ? 'pipe' : 'ignore', 'ignore', 'pipe'] });
  kills.push(() => child.kill('SIGKILL'));
  const tail = new StderrTail();
  tail.attach(child.stderr);
  const fed = stdin
    ? pipeline(stdin, child.stdin as Writable).catch((err: Error) => err)
    : Promise.resolve(undefined);
  const { code, signal } = await exitOf(child);
  const feedError = await fed;
  if (code !== 0) {
    throw failure(
      FailureType.ProcessFailed,
      `${what} ${signal ? `killed by ${signal}` : `exited ${code}`}: ${tail.toString() || 'no error output'}`,
    );
  }
  if (feedError instanceof Error) throw feedError;
}
