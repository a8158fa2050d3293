import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { dumpOptionArgs, type DumpOptions } from '../../../common/dump-options';
import { STATISTICS_SINCE_MAJOR, toolEnv, type PgBinaries } from '../binaries';
import { pgChildEnv, type PgConnectionSettings } from '../connection';
import { FAST_RESTORE_OPTIONS, runTool } from '../restore/run';

/**
 * Moves `database` from the recovered copy into the shadow on the live server with PostgreSQL's
 * own tools, in parallel: `pg_dump -Fd -j` from the copy into the scratch folder, then
 * `pg_restore -j` into the (already created, marked) shadow. Owners and grants follow the
 * configured dump options, as for every backup; planner statistics travel along (PostgreSQL 18+).
 */
export async function copyIntoShadow(o: {
  readonly bins: PgBinaries;
  readonly copy: { readonly port: number; readonly user: string };
  readonly live: PgConnectionSettings;
  readonly database: string;
  readonly shadow: string;
  readonly jobs: number;
  readonly dumpOptions: DumpOptions;
  readonly dir: string;
  readonly kills: (() => void)[];
  readonly step: { phase: string };
}): Promise<{ statisticsRestored: boolean }> {
  const dumpDir = path.join(o.dir, 'dump');
  await mkdir(o.dir, { recursive: true });
  // pg_dump runs as us: the folder is ours even when the copy's server runs as `postgres`.
  const statistics = o.bins.major >= STATISTICS_SINCE_MAJOR;
  const jobs = String(Math.max(1, o.jobs));
  o.step.phase = 'pg_dump';
  await runTool(
    o.bins.path('pg_dump'),
    [
      '--format=directory',
      `--jobs=${jobs}`,
      '--compress=0',
      '--no-password',
      ...dumpOptionArgs(o.dumpOptions),
      ...(statistics ? ['--statistics'] : []),
      `--file=${dumpDir}`,
    ],
    {
      ...toolEnv(),
      PGHOST: '127.0.0.1',
      PGPORT: String(o.copy.port),
      PGUSER: o.copy.user,
      PGDATABASE: o.database,
      PGAPPNAME: 'dbops-pitr',
    },
    undefined,
    o.kills,
    `pg_dump of ${o.database} from the recovered copy`,
  );
  o.step.phase = 'pg_restore';
  await runTool(
    o.bins.path('pg_restore'),
    [
      '--no-password',
      '--exit-on-error',
      `--jobs=${jobs}`,
      ...dumpOptionArgs(o.dumpOptions),
      ...(statistics ? ['--statistics'] : []),
      '--dbname',
      o.shadow,
      dumpDir,
    ],
    { ...pgChildEnv(o.live, o.shadow), PGOPTIONS: FAST_RESTORE_OPTIONS, ...toolEnv() },
    undefined,
    o.kills,
    `pg_restore into ${o.shadow}`,
  );
  return { statisticsRestored: statistics };
}
