import type { Command } from 'commander';
import { adoptSpecBackups, type AdoptOutcome } from '../../../activities/postgres/adopt';
import { withManifestKey } from '../../../activities/storage';
import { FailureType, failure } from '../../../common/failures';
import { getConfig } from '../../config';
import { databaseName } from '../options';
import { humanBytes, plural, printJson, printTable } from '../output';

/** `dbops backups adopt`: the spec's `<db>_<yyyymmdd>_<hhmmss>.sql.gz` files become dbops backups. */
export function registerAdopt(backups: Command): void {
  backups
    .command('adopt')
    .description(
      "take over the spec's backups (<db>_<yyyymmdd>_<hhmmss>.sql.gz from backup.sh): check each, copy it into the store with a manifest marked adopted; list, verify, restore and prune them like any backup",
    )
    .option(
      '--from <dir|s3://bucket/prefix>',
      "where the spec's files are (default: the store's own folder or prefix)",
    )
    .option('--database <name>', 'only this database (repeatable)', collect, [] as string[])
    .option('--dry-run', 'check and report each file, copy and write nothing')
    .option('--json', 'machine-readable output')
    .action(async (opts: { from?: string; database: string[]; dryRun?: boolean; json?: boolean }) => {
      const config = getConfig();
      const databases = opts.database.map((d) => databaseName('--database', d));
      const live = !opts.json && process.stderr.isTTY;
      const report = await adoptSpecBackups(withManifestKey(config.storage, config.manifestKeyFile), {
        ...(opts.from !== undefined && { from: opts.from }),
        ...(databases.length > 0 && { databases }),
        dryRun: opts.dryRun === true,
        onFile: (o) => live && process.stderr.write(`${o.status}: ${o.file}\n`),
      });
      if (opts.json) printJson(report);
      else {
        process.stdout.write(
          `from ${report.source} into ${report.store}${report.dryRun ? ' (dry run)' : ''}\n`,
        );
        printTable(
          ['file', 'status', 'backup', 'size', 'verbose lines', 'reason'],
          report.files.map((f) => [
            f.file,
            f.status,
            f.backupId ?? '',
            f.sizeBytes === undefined ? '' : humanBytes(f.sizeBytes),
            f.verboseLines ?? '',
            f.reason ?? '',
          ]),
        );
        process.stdout.write(`${summary(report.files)}\n`);
      }
      if (!opts.json && !report.dryRun && report.files.some((f) => f.status === 'adopted'))
        process.stdout.write(
          'row counts are unknown until verified: run "dbops verify <backup>" for each (retention counts an adopted backup as good only once verified)\n',
        );
      const unusable = report.files.filter((f) => f.status === 'unusable');
      if (unusable.length)
        throw failure(
          FailureType.IntegrityCheckFailed,
          `${plural(unusable.length, 'file')} could not be adopted (${unusable.map((f) => f.file).join(', ')}): each reason is above; the others were ${report.dryRun ? 'checked' : 'adopted'}. Nothing of the unusable ones was written; keep them with the spec's restore.sh until they age out`,
        );
    });
}

const collect = (value: string, previous: string[]) => [...previous, value];

function summary(files: readonly AdoptOutcome[]): string {
  const counts = new Map<string, number>();
  for (const f of files) counts.set(f.status, (counts.get(f.status) ?? 0) + 1);
  if (!counts.size) return 'no files found';
  return [...counts].map(([status, n]) => `${n} ${status}`).join(', ');
}
