import { CancelledFailure, Context } from '@temporalio/activity';
import { type BackupFormat } from '../../../common/backup';
import { type DumpOptions, dumpOptionArgs } from '../../../common/dump-options';
import { FailureType, failure } from '../../../common/failures';
import type { PgBinaries } from '../binaries';
import { StderrTail } from '../dump-pipeline';

function pgDumpArgs(
  format: BackupFormat,
  snapshot: string,
  target: string | undefined,
  jobs: number,
  statistics: boolean,
  options: DumpOptions,
): string[] {
  const args = [`--format=${format}`, `--snapshot=${snapshot}`, '--no-password', ...dumpOptionArgs(options)];
  // Statistics restore in milliseconds; without them the restored database needs a full ANALYZE.
  if (statistics) args.push('--statistics');
  if (format !== 'plain') args.push('--compress=0'); // compression runs outside pg_dump (zstd/gzip)
  if (format === 'directory') args.push(`--jobs=${jobs}`);
  if (target) args.push(`--file=${target}`);
  return args;
}

/**
 * Starts pg_dump in the exported snapshot (to stdout, or to `target` for the directory format),
 * with its stderr logged and kept for the failure message, and killed on cancellation.
 */
export async function pgDumpRunner(o: {
  readonly bins: PgBinaries;
  readonly env: Record<string, string>;
  readonly database: string;
  readonly format: BackupFormat;
  readonly snapshot: string;
  readonly jobs: number;
  readonly statistics: boolean;
  readonly options: DumpOptions;
  readonly kills: (() => void)[];
}) {
  const ctx = Context.current();
  // execa is ESM-only: loaded lazily so this CommonJS module can be require()d by the worker.
  const { execa } = await import('execa');
  const tail = new StderrTail();
  return {
    start(target: string | undefined, stdout: 'ignore' | 'pipe') {
      const child = execa(
        o.bins.path('pg_dump'),
        pgDumpArgs(o.format, o.snapshot, target, o.jobs, o.statistics, o.options),
        {
          env: o.env,
          extendEnv: false,
          stdin: 'ignore',
          stdout: stdout as 'ignore',
          stderr: 'pipe',
          buffer: false,
          reject: false,
        },
      );
      o.kills.push(() => void child.kill('SIGKILL'));
      tail.attach(child.stderr, (line) => {
        ctx.log.warn('pg_dump', { database: o.database, line });
      });
      return child;
    },

    /** The error for a pg_dump that did not exit 0: its stderr, or the cancellation that killed it. */
    failed(code: number | undefined | null, signal?: string): Error {
      return ctx.cancellationSignal.aborted
        ? new CancelledFailure('backup cancelled: pg_dump killed')
        : failure(
            FailureType.ProcessFailed,
            `pg_dump ${signal ? `killed by ${signal}` : `exited ${code}`} for database ${o.database}: ${tail.toString() || 'no error output'}`,
          );
    },
  };
}

export type PgDump = Awaited<ReturnType<typeof pgDumpRunner>>;
