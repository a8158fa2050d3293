import { Presets } from 'cli-progress';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Command } from 'commander';
import { Option } from 'commander';
import {
  BACKUP_COMPRESSIONS,
  BACKUP_FORMATS,
  backupStatus,
  type BackupCompression,
  type BackupFormat,
  manifestKey,
  parseBackupId,
  backupFolderKey,
} from '../../../common/backup';
import { FailureType, failure } from '../../../common/failures';
import {
  createBackupStore,
  listBackupEntries,
  listStoredDatabases,
  loadManifest,
  pruneDatabase,
} from '../../../activities/storage';
import type { backupWorkflow } from '../../../workflows/backup';
import { backupProgressQuery } from '../../../workflows/backup-messages';
import { startBackup } from '../../backup/start';
import { getConfig, type Config } from '../../config';
import { withClient, workflowUrl } from '../../temporal';
import { createProgress, humanBytes, humanDuration, printJson, printTable } from '../output';

function databasesFor(config: Config, db: string | undefined): string[] {
  if (!db) return [...config.databases];
  return [db];
}

/** Live bytes from the dump activity's heartbeat, phase from the workflow's query (on stderr). */
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
        const p = await handle.query(backupProgressQuery);
        const d = await handle.describe();
        const beat = d.raw.pendingActivities?.[0]?.heartbeatDetails?.payloads?.[0];
        const live = beat
          ? client.options.loadedDataConverter.payloadConverter.fromPayload<{ bytes?: number }>(beat)
          : undefined;
        bar.update(0, { db: p.backupId, phase: p.phase, bytes: humanBytes(live?.bytes ?? p.bytes) });
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
        await withClient(config, async (client) => {
          const results = [];
          for (const database of databasesFor(config, opts.db)) {
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

  const backups = program.command('backups').description('stored backups: list, show, prune');
  backups
    .command('list')
    .description('backups in the store (complete and incomplete)')
    .option('--db <name>', 'only this database')
    .option('--json', 'machine-readable output')
    .action(async (opts: { db?: string; json?: boolean }) => {
      const config = getConfig();
      const store = createBackupStore(config.storage);
      try {
        const dbs = opts.db ? [opts.db] : await listStoredDatabases(store);
        const entries = (await Promise.all(dbs.map((d) => listBackupEntries(store, d)))).flat();
        if (opts.json) {
          printJson(
            entries.map((e) => ({
              ...e,
              status: backupStatus(e),
              location: store.describe(backupFolderKey(e.database, e.id)),
            })),
          );
          return;
        }
        printTable(
          ['id', 'time (UTC)', 'size', 'format', 'status', 'age'],
          entries.map((e) => [
            e.id,
            e.time.replace('T', ' ').slice(0, 19),
            humanBytes(e.manifest?.sizeBytes ?? e.storedBytes),
            e.manifest ? `${e.manifest.format}+${e.manifest.compression}` : '',
            backupStatus(e),
            humanDuration(Date.now() - new Date(e.time).getTime()),
          ]),
        );
      } finally {
        await store.close();
      }
    });
  backups
    .command('show <id>')
    .description('the manifest of a backup and where it is stored')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }) => {
      const config = getConfig();
      try {
        parseBackupId(id);
      } catch (err) {
        throw failure(FailureType.InvalidInput, (err as Error).message);
      }
      const store = createBackupStore(config.storage);
      try {
        const manifest = await loadManifest(store, id);
        const location = store.describe(`${manifest.database}/${manifest.id}/${manifest.file}`);
        if (opts.json)
          printJson({
            location,
            manifestLocation: store.describe(manifestKey(manifest.database, id)),
            manifest,
          });
        else {
          process.stdout.write(
            `${manifest.id}  ${manifest.format}+${manifest.compression}  ${humanBytes(manifest.sizeBytes)}  sha256 ${manifest.sha256}\n` +
              `location: ${location}\nserver ${manifest.serverVersion}, pg_dump ${manifest.pgDumpVersion}, schema version ${manifest.schemaVersion ?? '(none)'}\n` +
              `taken ${manifest.startedAt} .. ${manifest.finishedAt}; integrity: ${manifest.integrity.checks}\n`,
          );
          printTable(
            ['table', 'kind', 'rows'],
            manifest.tables.map((t) => [`${t.schema}.${t.table}`, t.kind, t.rows]),
          );
        }
      } finally {
        await store.close();
      }
    });
  backups
    .command('prune')
    .description(
      `apply retention: delete backups older than DBOPS_RETENTION_DAYS, never the newest DBOPS_RETENTION_MIN_KEEP good ones`,
    )
    .option('--db <name>', 'only this database (default: configured and stored ones)')
    .option('--dry-run', 'list what would be deleted, delete nothing')
    .option('--json', 'machine-readable output')
    .action(async (opts: { db?: string; dryRun?: boolean; json?: boolean }) => {
      const config = getConfig();
      const store = createBackupStore(config.storage);
      try {
        const dbs = opts.db
          ? [opts.db]
          : [...new Set([...config.databases, ...(await listStoredDatabases(store))])];
        const results = [];
        for (const d of dbs) results.push(await pruneDatabase(store, d, config.backup, Boolean(opts.dryRun)));
        if (opts.json) printJson(results);
        else
          printTable(
            ['database', 'backup', opts.dryRun ? 'would' : 'action', 'reason'],
            results.flatMap((r) => [
              ...r.deleted.map((d) => [r.database, d.id, 'delete', d.reason]),
              ...r.kept.map((k) => [r.database, k.id, 'keep', k.reason]),
            ]),
          );
      } finally {
        await store.close();
      }
    });
}
