import type { Command } from 'commander';
import { inspectCluster, listBaseBackupEntries } from '../../../activities/postgres/basebackup';
import { createBackupStore } from '../../../activities/storage';
import { isSystemIdentifier } from '../../../common/pitr';
import { FailureType, failure } from '../../../common/failures';
import { getConfig } from '../../config';
import { humanBytes, printJson, printTable } from '../output';

/** `dbops basebackups list [--json]`: the base backups of the configured server's cluster, oldest first. */
export function registerBaseBackupsCommand(program: Command): void {
  const group = program.command('basebackups').description('stored base backups (pg_basebackup): list');
  group
    .command('list')
    .description(
      'base backups of the configured server, oldest first, with their parent links (complete and incomplete)',
    )
    .option(
      '--system-id <id>',
      "another cluster's base backups (its system identifier), e.g. of a server that is gone",
    )
    .option('--json', 'machine-readable output')
    .action(async (opts: { systemId?: string; json?: boolean }) => {
      const config = getConfig();
      if (opts.systemId !== undefined && !isSystemIdentifier(opts.systemId))
        throw failure(
          FailureType.InvalidInput,
          `--system-id ${opts.systemId}: not a PostgreSQL system identifier (digits, as SELECT system_identifier FROM pg_control_system() shows)`,
        );
      const systemId = opts.systemId ?? (await inspectCluster(config.pg)).systemIdentifier;
      const store = createBackupStore(config.storage);
      try {
        const entries = await listBaseBackupEntries(store, systemId);
        if (opts.json) {
          printJson(
            entries.map((e) => ({ ...e, parentId: e.manifest?.parentId, systemIdentifier: systemId })),
          );
          return;
        }
        process.stdout.write(`cluster ${systemId}\n`);
        printTable(
          ['id', 'kind', 'parent', 'time (UTC)', 'start LSN', 'stop LSN', 'size', 'verified'],
          entries.map((e) => [
            e.id,
            e.kind,
            e.manifest?.parentId ?? '',
            e.time.replace('T', ' ').slice(0, 19),
            e.manifest?.startLsn ?? '',
            e.manifest?.stopLsn ?? '',
            humanBytes(e.manifest?.sizeBytes ?? e.storedBytes),
            e.complete ? `yes (${e.manifest!.verification.tool})` : 'no (incomplete)',
          ]),
        );
      } finally {
        await store.close();
      }
    });
}
