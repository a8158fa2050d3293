import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { FailureType, failure } from '../../common/failures';

/** pg_dump/pg_restore --statistics (planner statistics in the archive) exist since PostgreSQL 18. */
export const STATISTICS_SINCE_MAJOR = 18;

export type PgTool = 'pg_dump' | 'pg_restore' | 'psql';

/**
 * The whole environment of a child tool that reaches no server (zstd, tar, `pg_restore --list`,
 * `--version`): PATH, to find it. The worker's own environment holds the S3 keys, the Slack webhook
 * and PGPASSWORD; no child inherits it (pg_dump, pg_restore and psql connecting get pgChildEnv).
 */
export function toolEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin' };
}

export interface PgBinaries {
  readonly dir: string;
  readonly major: number;
  readonly version: string;
  path(tool: PgTool): string;
}

async function toolVersion(file: string): Promise<{ version: string; major: number } | undefined> {
  try {
    await access(file, constants.X_OK);
    // execa is ESM-only with import-only dependencies: load it lazily (a static import breaks require()).
    const { execa } = await import('execa');
    const { stdout } = await execa(file, ['--version'], {
      timeout: 10_000,
      env: toolEnv(),
      extendEnv: false,
    });
    const m = /(\d+)(?:\.(\d+))?/.exec(stdout);
    return m ? { version: m[0], major: Number(m[1]) } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Finds pg_dump/pg_restore/psql whose major version is at least the server's: the configured
 * DBOPS_PG_BIN_DIR, else Debian's /usr/lib/postgresql/<major>/bin. Never PATH: an older pg_dump
 * refuses to dump a newer server.
 */
export async function resolvePgBinaries(
  configuredDir: string | undefined,
  serverMajor: number,
): Promise<PgBinaries> {
  const candidates = configuredDir
    ? [configuredDir]
    : [serverMajor, serverMajor + 1, serverMajor + 2].map((m) => `/usr/lib/postgresql/${m}/bin`);
  const tried: string[] = [];
  for (const dir of candidates) {
    const tools = await Promise.all(
      (['pg_dump', 'pg_restore', 'psql'] as const).map((t) => toolVersion(path.join(dir, t))),
    );
    if (tools.some((t) => t === undefined)) {
      tried.push(`${dir} (pg_dump/pg_restore/psql not all found)`);
      continue;
    }
    const major = Math.min(...tools.map((t) => t!.major));
    if (major < serverMajor) {
      tried.push(`${dir} (version ${major} < server ${serverMajor})`);
      continue;
    }
    return { dir, major, version: tools[0]!.version, path: (tool) => path.join(dir, tool) };
  }
  throw failure(
    FailureType.Misconfigured,
    `no PostgreSQL ${serverMajor}+ client tools found: tried ${tried.join(', ')}; set DBOPS_PG_BIN_DIR to the bin folder of PostgreSQL ${serverMajor} or newer`,
  );
}
