import { Presets } from 'cli-progress';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Command } from 'commander';
import { Option } from 'commander';
import {
  BACKUP_COMPRESSIONS,
  BACKUP_FORMATS,
  type BackupCompression,
  type BackupFormat,
} from '../../../common/backup';
import type { backupWorkflow } from '../../../workflows/backup';
import { backupProgress, startBackup } from '../../client/backup';
import { withClient, workflowUrl } from '../../client/connection';
import { getConfig, type Config } from '../../config';
import { databaseName } from '../options';
import { createProgress, humanBytes, humanDuration, printJson } from '../output';

/** The databases to back up, checked before anything connects. */
function databasesFor(config: Config, db: string | undefined): string[] {
  if (!db) return [...config.databases];
  return [databaseName('--db', db)];
}

/** A progress bar on stderr (phase and live bytes, see backupProgress) until the backup ends. */
async function waitWithProgress(
  client: Client,
  handle: WorkflowHandle<typeof backupWorkflow>,
): Promise<void> {
  const bar = createProgress({
    format: '{db} [{phase}] {bytes}',
    plainFormat: 'backup {db}: {phase} {bytes}',
    hideCursor: true,
    preset: Presets.shades_classic,
  });
  bar.start(1, 0, { db: handle.workflowId, phase: 'starting', bytes: '' });
  const timer = setInterval(() => {
    void (async () => {
      try {
        const p = await backupProgress(client, handle);
        bar.update(0, { db: p.backupId, phase: p.phase, bytes: humanBytes(p.bytes) });
      } catch {
        /* the run may just have finished */
      }
    })();
  }, 1000);
  try {
    await handle.result();
  } finally {
    clearInterval(timer);
    bar.stop();
  }
}

export function registerBackupCommand(program: Command): void {
  program
    .command('backup')
    .description('back up databases now (default: every configured database)')
    .option('--db <name>', 'the database to back up')
    .addOption(new Option('--format <format>', 'pg_dump format').choices(BACKUP_FORMATS))
    .addOption(new Option('--compression <compression>', 'compression').choices(BACKUP_COMPRESSIONS))
    .option('--wait', 'wait for the backup, with progress')
    .option('--json', 'machine-readable output')
    .action(
      async (opts: {
        db?: string;
        format?: BackupFormat;
        compression?: BackupCompression;
        wait?: boolean;
        json?: boolean;
      }) => {
        const config = getConfig();
        const databases = databasesFor(config, opts.db);
        await withClient(config, async (client) => {
          const results = [];
          for (const database of databases) {
            const handle = await startBackup(client, config, {
              database,
              format: opts.format,
              compression: opts.compression,
            });
            const url = workflowUrl(config, handle.workflowId);
            if (!opts.wait) {
              results.push({ database, workflowId: handle.workflowId, url });
              continue;
            }
            if (!opts.json) await waitWithProgress(client, handle);
            const r = await handle.result();
            results.push({ ...r, workflowId: handle.workflowId, url });
          }
          if (opts.json) printJson(results);
          else
            for (const r of results) {
              if ('backupId' in r) {
                process.stdout.write(
                  `backup ${r.backupId}: ${humanBytes(r.sizeBytes)} in ${humanDuration(r.durationMs)} at ${r.location}\n  run: ${r.url}\n`,
                );
              } else
                process.stdout.write(`backup of ${r.database} started: ${r.workflowId}\n  run: ${r.url}\n`);
            }
        });
      },
    );
}
