import { spawn } from 'node:child_process';
import { pipeline } from 'node:stream/promises';
import type { Readable, Writable } from 'node:stream';
import { FailureType, failure } from '../../../common/failures';
import type { StorageSettings } from '../../storage';
import { resolvePgBinaries, type PgBinaries } from '../binaries';
import { serverMajorVersion, withPg, type PgConnectionSettings, type PgServers } from '../connection';
import { exitOf, StderrTail } from '../dump-pipeline';
import { withProgress } from '../progress';

/**
 * What the restore activities are built from: worker settings, never workflow arguments. `pg` and
 * the optional `verifyPg` (DBOPS_VERIFY_PG*): serverOf(deps, name) picks the one holding a database.
 */
export interface RestoreDeps extends PgServers {
  readonly storage: StorageSettings;
  /** Folder for the seekable temporary archive (DBOPS_SCRATCH_DIR); default os.tmpdir(). */
  readonly tempDir?: string;
}

const HEARTBEAT_MS = 2000;

/** The shadow is not live until cut-over: its restore session can trade durability for speed. */
export const FAST_RESTORE_OPTIONS = '-c synchronous_commit=off -c maintenance_work_mem=256MB';

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

/**
 * What pg_restore, psql, libpq, tar and zstd print when something outside the archive stopped
 * them: the server went away or refused, the disk or memory ran out. Such a failure says nothing
 * about the backup, so it must never become a verification's verdict.
 */
const OUTSIDE_CAUSES: readonly (readonly [RegExp, string])[] = [
  [
    /server closed the connection unexpectedly|terminating connection|connection to server .*failed|could not connect to server|no connection to the server|could not (send|receive) data (to|from) server|lost synchronization with server|SSL SYSCALL error|Connection refused|Connection reset/i,
    'the connection to PostgreSQL was lost or refused',
  ],
  [
    /the database system is (shutting down|starting up|in recovery mode|not yet accepting connections)|too many (clients|connections)|remaining connection slots/i,
    'PostgreSQL was not accepting connections',
  ],
  [/No space left on device|could not extend file|Disk quota exceeded/i, 'no space left on a disk'],
  [/out of memory|Cannot allocate memory/i, 'out of memory'],
];

/** Why a tool's failure is not about its input (see OUTSIDE_CAUSES), or undefined when it may be. */
export function outsideCause(stderr: string, signal?: string | null): string | undefined {
  if (signal) return `killed by ${signal} from outside (out of memory, or the worker stopping)`;
  return OUTSIDE_CAUSES.find(([pattern]) => pattern.test(stderr))?.[1];
}

/**
 * Runs a tool to its end (stdin fed from `stdin` when given). A non-zero exit is ProcessFailed
 * with its stderr (the tool refused the archive's content), or Unavailable when the cause lies
 * outside the archive (outsideCause): retried, and never a verification's verdict.
 */
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
    const message = `${what} ${signal ? `killed by ${signal}` : `exited ${code}`}: ${tail.toString() || 'no error output'}`;
    const outside = outsideCause(tail.toString(), signal);
    if (outside) throw failure(FailureType.Unavailable, `${message} (${outside}: not a fault of the backup)`);
    throw failure(FailureType.ProcessFailed, message);
  }
  if (feedError instanceof Error) throw feedError;
}
