import type { Command } from 'commander';
import {
  type BackupManifest,
  backupStatus,
  manifestKey,
  parseBackupId,
  backupFolderKey,
} from '../../../common/backup';
import { FailureType, failure } from '../../../common/failures';
import {
  compareMirror,
  createBackupStore,
  type LocalCopy,
  listBackupEntries,
  listStoredDatabases,
  loadManifest,
  MirroredStore,
  pruneDatabase,
  signatureStatus,
  withManifestKey,
} from '../../../activities/storage';
import { type Config, getConfig } from '../../config';
import { databaseName } from '../options';
import { registerAdopt } from './backups-adopt';
import { registerRepairCopies } from './backups-repair';
import { humanBytes, humanDuration, printJson, printTable } from '../output';

/** `dbops backups list|show|prune|adopt|repair-copies`: the backup store, read (and changed) from this process. */
export function registerBackupsCommand(program: Command): void {
  const backups = program
    .command('backups')
    .description('stored backups: list, show, prune, adopt, repair-copies');
  registerList(backups);
  registerShow(backups);
  registerPrune(backups);
  registerAdopt(backups);
  registerRepairCopies(backups);
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
        const mirror = store instanceof MirroredStore ? await localCopies(store, dbs) : undefined;
        const copyOf = (e: { database: string; id: string }) => mirror?.copies.get(`${e.database}/${e.id}`);
        if (opts.json) {
          printJson(
            entries.map((e) => ({
              ...e,
              status: backupStatus(e),
              signature: signatureStatus(e.manifest, store.manifestKey),
              location: store.describe(backupFolderKey(e.database, e.id)),
              ...(mirror && { localCopy: copyOf(e) }),
            })),
          );
        } else {
          // A listing reads manifests unchecked (restores check them): the signature is "verified" only
          // with this process's DBOPS_MANIFEST_KEY, otherwise shown "unverified".
          printTable(
            [
              'id',
              'time (UTC)',
              'size',
              'format',
              'status',
              'signature',
              ...(mirror ? ['local copy'] : []),
              'age',
            ],
            entries.map((e) => [
              e.id,
              e.time.replace('T', ' ').slice(0, 19),
              humanBytes(e.manifest?.sizeBytes ?? e.storedBytes),
              e.manifest
                ? `${e.manifest.format}+${e.manifest.compression}${e.manifest.adopted ? ' (adopted)' : ''}`
                : '',
              backupStatus(e),
              e.complete ? signatureStatus(e.manifest, store.manifestKey) : '',
              ...(mirror ? [copyOf(e)?.status ?? ''] : []),
              humanDuration(Date.now() - new Date(e.time).getTime()),
            ]),
          );
        }
        if (mirror) reportLocalCopies(mirror);
      } finally {
        await store.close();
      }
    });
}

/** DBOPS_BACKUP_MIRROR=local: each backup's local copy (by `<database>/<id>`) and the folders only the copy holds. */
async function localCopies(store: MirroredStore, dbs: readonly string[]) {
  const copies = new Map<string, LocalCopy>();
  const orphans: string[] = [];
  for (const d of dbs) {
    const report = await compareMirror(store, d);
    for (const [id, copy] of report.copies) copies.set(`${d}/${id}`, copy);
    orphans.push(...report.orphans.map((id) => store.mirror.describe(backupFolderKey(d, id))));
  }
  return { copies, orphans };
}

/**
 * A local copy that is missing or damaged is said on stderr (the listing's exit stays 0: the backup
 * itself is whole in S3, where restores read it), so is a copy with no backup in S3.
 */
function reportLocalCopies(mirror: { copies: ReadonlyMap<string, LocalCopy>; orphans: readonly string[] }) {
  for (const [name, copy] of mirror.copies) {
    if (copy.status !== 'ok')
      process.stderr.write(
        `dbops: local copy of ${name} is ${copy.status} (${copy.detail}) in ${copy.location}; the backup in S3 is unaffected; run "dbops backups repair-copies --db ${name.split('/')[0]}"\n`,
      );
  }
  for (const folder of mirror.orphans)
    process.stderr.write(
      `dbops: ${folder} is a local copy with no backup in S3 (a delete that stopped halfway)\n`,
    );
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
              `signature: ${describeSignature(signature, config)}\n` +
              adoptedText(manifest),
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

/** What `backups show` says of an adopted spec backup: where it came from, whether its rows are counted. */
function adoptedText(manifest: BackupManifest): string {
  const a = manifest.adopted;
  if (!a) return '';
  const counted = a.countedAt
    ? `rows counted at ${a.countedAt} by ${a.countedBy ?? 'a restore'}`
    : `rows not counted yet: run "dbops verify ${manifest.id}"`;
  return `adopted from ${a.source} at ${a.adoptedAt} (${a.verboseLines} pg_dump --verbose lines removed before psql, \\restrict lock ${a.restrictLock === 'own' ? 'of its own' : 'added at restore'}); ${counted}\n`;
}
