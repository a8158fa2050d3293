import type { Command } from 'commander';
import { FailureType, failure } from '../../../common/failures';
import { withClient, workflowUrl } from '../../client/connection';
import {
  startWalArchiver,
  stopWalArchiver,
  clusterSystemId,
  walCheck,
  walStatus,
  type WalStatus,
} from '../../client/wal';
import { getConfig } from '../../config';
import { humanBytes, plural, printJson, printTable } from '../output';

const lagText = (bytes: number | null | undefined, seconds: number | null | undefined) =>
  bytes === null || bytes === undefined
    ? 'unknown'
    : `${humanBytes(bytes)}${seconds === null || seconds === undefined ? '' : `, ${seconds.toFixed(1)} s`}`;

function printStatus(s: WalStatus): void {
  const { server } = s;
  const beat = s.activity?.lag;
  const rows: string[][] = [
    [
      'archiver',
      `${s.state}${s.archiver ? ` (${s.archiver.phase}, ${plural(s.archived ?? s.archiver.archived, 'segment')} stored)` : ''}`,
    ],
    ['workflow', s.workflowId],
    ['cluster', `${server.systemId}, timeline ${server.timeline}`],
    ['server at', `${server.currentLsn} (segment ${server.currentSegment})`],
    [
      'last archived segment',
      `${s.lastArchivedSegment ?? 'none'}${server.partial ? `; partial ${server.partial.segment} up to ${server.partial.receivedLsn}` : ''}`,
    ],
    ['received lag', lagText(server.receivedLagBytes, server.receivedLagSeconds)],
    ['stored lag', lagText(server.storedLagBytes, beat?.storedLagSeconds)],
    [
      'slots',
      `${server.guardSlot.name}: ${server.guardSlot.problem ?? `holds WAL from ${server.guardSlot.restartLsn}`}; ${server.streamSlot.name}: ${server.streamSlot.problem ?? (server.streamSlot.active ? 'streaming' : 'idle')}`,
    ],
  ];
  if (s.activity && s.activity.attempt > 1)
    rows.push(['attempt', `${s.activity.attempt}; last failure: ${s.activity.lastFailure ?? 'unknown'}`]);
  for (const e of s.archiver?.events ?? []) rows.push([`event ${e.at}`, `${e.kind}: ${e.message}`]);
  printTable(['WAL archiving', 'now'], rows);
}

export function registerWalCommand(program: Command): void {
  const wal = program
    .command('wal')
    .description('continuous WAL archiving of the configured server (pg_receivewal into the backup store)');

  wal
    .command('start')
    .description('start the WAL archiver of the configured server (one per cluster; joins a running one)')
    .action(async () => {
      const config = getConfig();
      await withClient(config, async (client) => {
        const { handle, systemId, started } = await startWalArchiver(client, config);
        process.stdout.write(
          `${started ? 'started' : 'already running:'} WAL archiver of cluster ${systemId}: ${workflowUrl(config, handle.workflowId)}\n`,
        );
      });
    });

  wal
    .command('stop')
    .description('stop the WAL archiver cleanly (pg_receivewal stops, completed segments are stored)')
    .action(async () => {
      const config = getConfig();
      const systemId = await clusterSystemId(config);
      await withClient(config, async (client) => {
        const stopped = await stopWalArchiver(client, systemId);
        process.stdout.write(
          stopped
            ? `WAL archiver of cluster ${systemId} stopped\n`
            : `no WAL archiver of cluster ${systemId} is running\n`,
        );
      });
    });

  wal
    .command('status')
    .description('state, last archived segment, lag in bytes and seconds (server and store)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const config = getConfig();
      const s = await withClient(config, (client) => walStatus(client, config));
      if (opts.json) printJson(s);
      else printStatus(s);
    });

  wal
    .command('check')
    .description('prove the archived WAL contiguous per timeline; non-zero exit naming each gap')
    .option('--verify', 'also read every segment back: SHA-256 of the object and of the decompressed segment')
    .option('--json', 'machine-readable output')
    .action(async (opts: { verify?: boolean; json?: boolean }) => {
      const config = getConfig();
      const report = await walCheck(config, { verify: opts.verify === true });
      if (opts.json) printJson(report);
      else {
        for (const t of report.timelines)
          process.stdout.write(
            `timeline ${t.timeline}: ${plural(t.segments, 'segment')}${t.first ? ` ${t.first}..${t.last}` : ''}\n`,
          );
        if (report.timelines.length === 0)
          process.stdout.write(`no archived WAL of cluster ${report.systemId}\n`);
      }
      if (report.problems.length)
        throw failure(
          FailureType.IntegrityCheckFailed,
          `the WAL archive of cluster ${report.systemId} has ${plural(report.problems.length, 'problem')}: ${report.problems.join('; ')}`,
        );
      if (!opts.json && report.timelines.length)
        process.stdout.write(`contiguous${report.verified ? ', every segment matches its sidecar' : ''}\n`);
    });
}
