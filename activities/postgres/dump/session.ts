import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client as PgClient } from 'pg';
import {
  type BackupCompression,
  type BackupEncryption,
  type BackupFormat,
  type TableRowCount,
  backupFileKey,
  dumpFileName,
} from '../../../common/backup';
import { type DumpOptions, parseDumpOptions } from '../../../common/dump-options';
import { FailureType, failure } from '../../../common/failures';
import { type AgeSettings, createBackupStore, type StorageSettings } from '../../storage';
import { recipientFingerprint } from '../age';
import { resolvePgBinaries, STATISTICS_SINCE_MAJOR } from '../binaries';
import { pgChildEnv, type PgConnectionSettings } from '../connection';
import { withProgress } from '../progress';
import { SCRATCH_PREFIX, sweepDumpLeftovers } from './leftovers';
import { pgDumpRunner } from './pg-dump';
import { countRows, openSnapshot, schemaVersion } from './snapshot';
import { uploadDirectory, uploadStream } from './upload';

export interface DumpDeps {
  readonly pg: PgConnectionSettings;
  readonly storage: StorageSettings;
  /** Scratch folder base for the directory format's pg_dump output; default os.tmpdir(). */
  readonly tempDir?: string;
  /** Parallel jobs for the directory format. */
  readonly directoryJobs?: number;
}

export interface DumpInput {
  readonly database: string;
  readonly backupId: string;
  readonly format: BackupFormat;
  readonly compression: BackupCompression;
  /** What pg_dump leaves out; absent (a workflow from before the option): owners and grants dumped. */
  readonly dumpOptions?: DumpOptions;
}

export interface DumpResult {
  readonly file: string;
  readonly location: string;
  readonly sizeBytes: number;
  readonly rawBytes: number;
  readonly sha256: string;
  readonly serverVersion: string;
  readonly pgDumpVersion: string;
  readonly schemaVersion: string | null;
  /** pg_dump wrote the planner statistics too (PostgreSQL 18+). */
  readonly statistics: boolean;
  /** The options pg_dump ran with: what the manifest records. */
  readonly dumpOptions: DumpOptions;
  /** The archive is age-encrypted for these recipients (DBOPS_BACKUP_AGE_RECIPIENTS). */
  readonly encryption?: BackupEncryption;
  readonly tables: TableRowCount[];
  readonly startedAt: string;
  readonly finishedAt: string;
}

const HEARTBEAT_MS = 3000;

/**
 * One dump: a REPEATABLE READ transaction exports its snapshot, pg_dump of the server's major
 * version dumps in it while the transaction counts every table's rows in the same snapshot, and
 * the archive streams into the store (the directory format through one tar stream).
 */
export async function dumpToStore(deps: DumpDeps, input: DumpInput): Promise<DumpResult> {
  const startedAt = new Date();
  const age = encryptionOf(deps.storage.age, input);
  const file = dumpFileName(input.format, input.compression, age !== undefined);
  const key = backupFileKey(input.database, input.backupId, file);
  const scratchBase = deps.tempDir ?? os.tmpdir();
  const store = createBackupStore(deps.storage);
  let client: PgClient | undefined;
  let tmp: string | undefined;
  const progress = { phase: 'dumping', bytes: 0 };
  const heartbeats = { everyMs: HEARTBEAT_MS, cancelled: 'backup cancelled' };
  try {
    await sweepDumpLeftovers(store, input, scratchBase);
    const snapshotClient = await openSnapshot(deps.pg, input.database);
    client = snapshotClient;
    // Only pg_dump -j of the directory format writes a folder before it is streamed.
    if (input.format === 'directory')
      tmp = await mkdtemp(path.join(scratchBase, `${SCRATCH_PREFIX}${input.backupId}-`));
    return await withProgress(
      heartbeats,
      () => ({ ...progress }),
      async (kills) => {
        const client = snapshotClient;
        const version = await client.query<{ server_version: string; server_version_num: string }>(
          "SELECT current_setting('server_version') AS server_version, current_setting('server_version_num') AS server_version_num",
        );
        const serverVersion = version.rows[0]!.server_version;
        const bins = await resolvePgBinaries(
          deps.pg.binDir,
          Math.floor(Number(version.rows[0]!.server_version_num) / 10000),
        );
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const snapshot = (await client.query<{ s: string }>('SELECT pg_export_snapshot() AS s')).rows[0]!.s;
        const schema = await schemaVersion(client);
        // Counting runs in the exporting transaction while pg_dump works in the same snapshot.
        const counting = countRows(client);
        counting.catch(() => undefined);
        const withStatistics = bins.major >= STATISTICS_SINCE_MAJOR;
        const dumpOptions = parseDumpOptions(input.dumpOptions);
        const pgDump = await pgDumpRunner({
          bins,
          env: pgChildEnv(deps.pg, input.database),
          database: input.database,
          format: input.format,
          snapshot,
          jobs: deps.directoryJobs ?? 2,
          statistics: withStatistics,
          options: dumpOptions,
          kills,
        });
        const dumping = { compression: input.compression, age, store, key, tmp, kills, progress, pgDump };
        const stored = await (input.format === 'directory'
          ? uploadDirectory(dumping)
          : uploadStream(dumping));
        const tables = await counting;
        await client.query('COMMIT');
        return {
          file,
          location: store.describe(key),
          ...stored,
          serverVersion,
          pgDumpVersion: bins.version,
          schemaVersion: schema,
          statistics: withStatistics,
          dumpOptions,
          ...(age && {
            encryption: { alg: 'age' as const, recipients: age.recipients.map(recipientFingerprint) },
          }),
          tables,
          startedAt: startedAt.toISOString(),
          finishedAt: new Date().toISOString(),
        };
      },
    );
  } finally {
    await client?.end().catch(() => undefined);
    if (tmp) await rm(tmp, { recursive: true, force: true });
    await store.close();
  }
}

/**
 * The age settings a dump encrypts with, or undefined without recipients. Encryption streams
 * pg_dump | zstd | age, child to child: a directory dump is written to the scratch folder first and
 * gzip runs in Node, so both would hold plaintext where none may be; they are refused.
 */
function encryptionOf(age: AgeSettings | undefined, input: DumpInput): AgeSettings | undefined {
  if (!age || age.recipients.length === 0) return undefined;
  if (input.format === 'directory' || input.compression !== 'zstd')
    throw failure(
      FailureType.InvalidInput,
      `an encrypted backup (DBOPS_BACKUP_AGE_RECIPIENTS is set) streams pg_dump | zstd | age with no plaintext on disk or in the worker: use format custom or plain with zstd compression, not ${input.format} with ${input.compression}`,
    );
  return age;
}
