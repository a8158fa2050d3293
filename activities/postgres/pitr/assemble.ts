import { spawn } from 'node:child_process';
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { BASE_BACKUP_FILES, type BaseBackupManifest } from '../../../common/basebackup';
import { FailureType, failure } from '../../../common/failures';
import { baseBackupObjectKey } from '../../../common/pitr';
import type { BackupStore } from '../../storage';
import { exitOf, HashTap, StderrTail } from '../dump-pipeline';
import { toolEnv } from '../binaries';
import { runTool } from '../restore/run';

/**
 * The data directory a point-in-time recovery starts from: each base backup of the chain (a full
 * one, then the incremental ones built on it, oldest first) is read from the store once, its
 * SHA-256 checked against its manifest while `zstd -d | tar -x` unpacks it, and an incremental
 * chain is combined by PostgreSQL's own pg_combinebackup. The result has recovery.signal: the
 * server started on it recovers instead of opening as a primary.
 */
export async function assembleDataDir(o: {
  readonly store: BackupStore;
  readonly chain: readonly BaseBackupManifest[];
  /** Scratch folder of this recovery; `data/` is made inside it. */
  readonly dir: string;
  readonly pgCombinebackup: string;
  readonly kills: (() => void)[];
  readonly onProgress: (what: string, bytes: number) => void;
}): Promise<string> {
  const parts: string[] = [];
  for (const backup of o.chain) {
    const into = path.join(o.dir, `base-${backup.id}`);
    await mkdir(into, { mode: 0o700 });
    await unpackBase(o.store, backup, into, o.kills, (bytes) => o.onProgress(`unpack ${backup.id}`, bytes));
    parts.push(into);
  }
  const data = path.join(o.dir, 'data');
  if (parts.length === 1) {
    await rename(parts[0]!, data);
  } else {
    o.onProgress(`pg_combinebackup of ${parts.length} backups`, 0);
    await runTool(
      o.pgCombinebackup,
      [...parts, '--output', data],
      toolEnv(),
      undefined,
      o.kills,
      `pg_combinebackup ${o.chain.map((b) => b.id).join(' ')}`,
    );
    for (const p of parts) await rm(p, { recursive: true, force: true });
  }
  // PostgreSQL refuses a data directory others can read.
  await chmod(data, 0o700);
  await writeFile(path.join(data, 'recovery.signal'), '');
  // What the base backup's server had running is not running here.
  await rm(path.join(data, 'postmaster.pid'), { force: true });
  return data;
}

async function unpackBase(
  store: BackupStore,
  backup: BaseBackupManifest,
  into: string,
  kills: (() => void)[],
  onBytes: (bytes: number) => void,
): Promise<void> {
  const key = baseBackupObjectKey(backup.systemIdentifier, backup.id, BASE_BACKUP_FILES.archive);
  const stored = new HashTap();
  const zstd = spawn('zstd', ['-d', '-q', '-c'], { env: toolEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  const tar = spawn('tar', ['-x', '-f', '-', '-C', into], {
    env: toolEnv(),
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  kills.push(
    () => zstd.kill('SIGKILL'),
    () => tar.kill('SIGKILL'),
  );
  const zstdErr = new StderrTail();
  const tarErr = new StderrTail();
  zstdErr.attach(zstd.stderr);
  tarErr.attach(tar.stderr);
  zstd.stdout.pipe(tar.stdin);
  tar.stdin.on('error', () => undefined);
  zstd.stdin.on('error', () => undefined);
  const progress = setInterval(() => onBytes(stored.bytes), 1_000);
  try {
    const fed = pipeline(await store.get(key), stored, zstd.stdin);
    const [z, t] = await Promise.all([exitOf(zstd), exitOf(tar), fed]);
    if (z.code !== 0 || t.code !== 0)
      throw failure(
        FailureType.ProcessFailed,
        `unpacking base backup ${backup.id} failed: zstd ${z.code ?? z.signal} ${zstdErr.toString()}; tar ${t.code ?? t.signal} ${tarErr.toString()}`,
      );
  } finally {
    clearInterval(progress);
  }
  if (stored.digest() !== backup.sha256 || stored.bytes !== backup.sizeBytes)
    throw failure(
      FailureType.IntegrityCheckFailed,
      `base backup ${store.describe(key)} has SHA-256 ${stored.digest()} (${stored.bytes} bytes), its manifest records ${backup.sha256} (${backup.sizeBytes} bytes): the stored backup is damaged or not this one`,
    );
}
