import type { Command } from 'commander';
import { backupStatus, manifestKey, parseBackupId, backupFolderKey } from '../../../common/backup';
import { FailureType, failure } from '../../../common/failures';
import {
  createBackupStore,
  listBackupEntries,
  listStoredDatabases,
  loadManifest,
  pruneDatabase,
  signatureStatus,
  withManifestKey,
} from '../../../activities/storage';
import { type Config, getConfig } from '../../config';
import { databaseName } from '../options';
import { humanBytes, humanDuration, printJson, printTable } from '../output';

/** `dbops backups list|show|prune`: the backup store, read (and pruned) from this process. */
export function registerBackupsCommand(program: Command): void {
  const backups = program.command('backups').description('stored backups: list, show, prune');
  registerList(backups);
  registerShow(backups);
  registerPrune(backups);
}

function registerList(backups: Command): void {
  backups
    .command('list')
    .description('backups in the store (complete and incomplete)')
    .option('--db <name>', 'only this database')
    .option('--json', 'machine-readable output')
    .action(async (opts: { db?: string; json?: boolean }) => {
      const config = getConfig();
      const only = opts.db === undefined ? undefined : databaseName('--db', opts.db);
      const store = createBackupStore(withManifestKey(config.storage, config.manifestKeyFile));
      try {
        const dbs = only ? [only] : await listStoredDatabases(store);
        const entries = (await Promise.all(dbs.map((d) => listBackupEntries(store, d)))).flat();
        if (opts.json) {
          printJson(
            entries.map((e) => ({
              ...e,
              status: backupStatus(e),
              signature: signatureStatus(e.manifest, store.manifestKey),
              location: store.describe(backupFolderKey(e.database, e.id)),
            })),
          );
          return;
        }
        // A listing reads manifests unchecked (restores check them): the signature is "verified" only
        // with this process's DBOPS_MANIFEST_KEY, otherwise shown "unverified".
        printTable(
          ['id', 'time (UTC)', 'size', 'format', 'status', 'signature', 'age'],
          entries.map((e) => [
            e.id,
            e.time.replace('T', ' ').slice(0, 19),
            humanBytes(e.manifest?.sizeBytes ?? e.storedBytes),
            e.manifest ? `${e.manifest.format}+${e.manifest.compression}` : '',
            backupStatus(e),
            e.complete ? signatureStatus(e.manifest, store.manifestKey) : '',
            humanDuration(Date.now() - new Date(e.time).getTime()),
          ]),
        );
      } finally {
        await store.close();
      }
    });
}

function registerShow(backups: Command): void {
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
      // Loaded as a restore loads it (schema, and the signature with DBOPS_MANIFEST_KEY set).
      const store = createBackupStore(withManifestKey(config.storage, config.manifestKeyFile));
      try {
        const manifest = await loadManifest(store, id);
        const location = store.describe(`${manifest.database}/${manifest.id}/${manifest.file}`);
        const signature = signatureStatus(manifest, store.manifestKey);
        if (opts.json)
          printJson({
            location,
            manifestLocation: store.describe(manifestKey(manifest.database, id)),
            signature,
            manifest,
          });
        else {
          process.stdout.write(
            `${manifest.id}  ${manifest.format}+${manifest.compression}  ${humanBytes(manifest.sizeBytes)}  sha256 ${manifest.sha256}\n` +
              `location: ${location}\nserver ${manifest.serverVersion}, pg_dump ${manifest.pgDumpVersion}, schema version ${manifest.schemaVersion ?? '(none)'}\n` +
              `taken ${manifest.startedAt} .. ${manifest.finishedAt}; integrity: ${manifest.integrity.checks}\n` +
              `signature: ${describeSignature(signature, config)}\n`,
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
}

function registerPrune(backups: Command): void {
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
      const only = opts.db === undefined ? undefined : databaseName('--db', opts.db);
      const store = createBackupStore(config.storage);
      try {
        const dbs = only
          ? [only]
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

/** The signature line of `backups show`: what was proven, and with which key. */
function describeSignature(status: string, config: Config): string {
  if (status === 'verified') return `verified with DBOPS_MANIFEST_KEY (${config.manifestKeyFile})`;
  if (status === 'unsigned') return 'none (written by a worker without DBOPS_MANIFEST_KEY)';
  return `${status} (set DBOPS_MANIFEST_KEY to the workers' key to verify it)`;
}
