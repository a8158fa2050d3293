/**
 * PostgreSQL's client tools behind a thin wrapper, for drills that must prove a tool never ran:
 * point a worker's DBOPS_PG_BIN_DIR at `dir`, and each pg_dump, pg_restore or psql it starts first
 * appends its arguments to `log`, then execs the real binary (the dev stack's), so nothing about
 * the tool changes. The `--version` probes of resolvePgBinaries are not logged.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stackVars } from '../../helpers/stack';

export interface PgToolLog {
  /** The folder to use as DBOPS_PG_BIN_DIR. */
  readonly dir: string;
  /** Every logged call so far, `<tool> <args>`, oldest first. */
  calls(): Promise<string[]>;
  /** Logged pg_restore and psql calls: what reads an archive's content. */
  restoreCalls(): Promise<string[]>;
}

export async function wrapPgTools(dir: string, log = path.join(dir, 'calls.log')): Promise<PgToolLog> {
  const real = stackVars().DBOPS_PG_BIN_DIR!;
  await mkdir(dir, { recursive: true });
  for (const tool of ['pg_dump', 'pg_restore', 'psql']) {
    const file = path.join(dir, tool);
    await writeFile(
      file,
      `#!/bin/sh\n[ "$1" = --version ] || echo "${tool} $*" >> '${log}'\nexec '${path.join(real, tool)}' "$@"\n`,
    );
    await chmod(file, 0o755);
  }
  const calls = async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean);
  return {
    dir,
    calls,
    restoreCalls: async () => (await calls()).filter((l) => /^(pg_restore|psql) /.test(l)),
  };
}
