import { statfs } from 'node:fs/promises';
import os from 'node:os';
import type { BackupManifest } from '../../../common/backup';
import { FailureType, failure } from '../../../common/failures';
import { parseDerivedDatabaseName } from '../../../common/restore';
import { humanBytes } from '../../../common/text';
import { describeServer, serverOf, withPg, type PgConnectionSettings, type PgServers } from '../connection';

type Sized = Pick<BackupManifest, 'id' | 'format' | 'rawBytes'>;

const bytes = (n: number) => `${n} bytes (${humanBytes(n)})`;

/**
 * Bytes a restore writes into the scratch folder: every archive is unpacked there and proven
 * before a tool reads it (unpack.ts): a custom archive decompressed (pg_restore -j also needs a
 * seekable file), a plain dump's SQL (psql reads the proven file), a directory archive's tar and
 * its extracted copy, which exist together until tar -x ends.
 */
export function scratchBytesNeeded(manifest: Pick<BackupManifest, 'format' | 'rawBytes'>): number {
  return { custom: 1, directory: 2, plain: 1 }[manifest.format] * manifest.rawBytes;
}

async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

/** Refuses (Misconfigured) when `dir` cannot hold what restoring `manifest` writes there; says what it found. */
export async function assertScratchSpace(dir: string, manifest: Sized): Promise<string> {
  const needed = scratchBytesNeeded(manifest);
  // A manifest from before the re-read check records no raw size: checkBackupArchive measures it.
  if (needed === 0) return `scratch folder ${dir} not checked (the manifest records no raw size)`;
  let free: number;
  try {
    free = await freeBytes(dir);
  } catch (err) {
    throw failure(
      FailureType.Misconfigured,
      `scratch folder ${dir} cannot be used (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): restoring backup ${manifest.id} needs ${bytes(needed)} there; create it or point DBOPS_SCRATCH_DIR at a folder with that much free space`,
    );
  }
  if (free < needed) {
    throw failure(
      FailureType.Misconfigured,
      `scratch folder ${dir} has ${bytes(free)} free; restoring backup ${manifest.id} needs ${bytes(needed)} there for the decompressed ${manifest.format} archive: free space in it or point DBOPS_SCRATCH_DIR at a larger folder`,
    );
  }
  return `scratch folder ${dir}: ${humanBytes(free)} free, ${humanBytes(needed)} needed`;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;

/**
 * Free bytes on the filesystem of the server's data directory, when that can be known from here:
 * the server runs on this machine (a Unix socket, or a loopback connection that the server also
 * sees as loopback, which a container behind a port mapping does not) and its data_directory
 * (readable by superusers and pg_read_all_settings) is a folder here. Otherwise the reason why not.
 */
export async function serverFreeSpace(
  pg: PgConnectionSettings,
): Promise<{ dataDirectory: string; freeBytes: number } | { unknown: string }> {
  const onSocket = pg.host.startsWith('/');
  if (!onSocket && !['localhost', '127.0.0.1', '::1'].includes(pg.host) && !LOOPBACK.test(pg.host))
    return { unknown: `the server ${describeServer(pg)} is not on this machine` };
  const r = await withPg(pg, undefined, (c) =>
    c
      .query<{ dir: string; addr: string | null }>(
        "SELECT current_setting('data_directory') AS dir, host(inet_server_addr()) AS addr",
      )
      .then((q) => q.rows[0]!)
      .catch((err: Error) => ({ error: err.message })),
  );
  if ('error' in r) return { unknown: `data_directory is not readable for ${pg.user} (${r.error})` };
  if (!onSocket && (r.addr === null || !LOOPBACK.test(r.addr)))
    return { unknown: `the server sees this connection on ${r.addr ?? 'a socket'}: it runs elsewhere` };
  try {
    return { dataDirectory: r.dir, freeBytes: await freeBytes(r.dir) };
  } catch (err) {
    return {
      unknown: `its data directory ${r.dir} is not visible here (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    };
  }
}

/**
 * Before any restore work into `database`: the scratch folder holds the decompressed archive and
 * the server that will hold `database` (serverOf: the verification server for a scratch database)
 * has about the backup's raw size free, where that can be known. Misconfigured otherwise, naming
 * the folder or data directory and the bytes needed. Returns what was found, for the record.
 */
export async function assertRestoreSpace(
  deps: PgServers & { readonly tempDir?: string },
  manifest: Sized,
  database: string,
): Promise<string> {
  const scratch = await assertScratchSpace(deps.tempDir ?? os.tmpdir(), manifest);
  const pg = serverOf(deps, database);
  const server = await serverFreeSpace(pg);
  if ('unknown' in server)
    return `${scratch}; free space of server ${describeServer(pg)} unknown: ${server.unknown}`;
  // The restored database is about as large as the dump's raw data (indexes add, compression saves).
  if (server.freeBytes < manifest.rawBytes) {
    throw failure(
      FailureType.Misconfigured,
      `PostgreSQL server ${describeServer(pg)}: data directory ${server.dataDirectory} has ${bytes(server.freeBytes)} free; restoring backup ${manifest.id} into ${database} needs about ${bytes(manifest.rawBytes)} (the backup's raw size): free space on that server${pg === deps.pg && parseDerivedDatabaseName(database)?.kind === 'verify' ? ', or verify on another one (DBOPS_VERIFY_PGHOST)' : ''}`,
    );
  }
  return `${scratch}; server ${describeServer(pg)} data directory ${server.dataDirectory}: ${humanBytes(server.freeBytes)} free, about ${humanBytes(manifest.rawBytes)} needed`;
}
