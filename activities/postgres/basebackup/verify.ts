import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Context } from '@temporalio/activity';
import {
  BASE_BACKUP_FILES,
  type BackupLabel,
  type BaseBackupKind,
  type BaseBackupManifest,
  type BaseBackupVerification,
  chainLinkProblem,
  parseBackupLabel,
  type PgManifestSummary,
  summarizePgManifest,
} from '../../../common/basebackup';
import { FailureType, failure } from '../../../common/failures';
import { baseBackupObjectKey } from '../../../common/pitr';
import { createBackupStore, type BackupStore } from '../../storage';
import { toolEnv } from '../binaries';
import { exitOf, FileDigest, HashTap, StderrTail } from '../dump-pipeline';
import { withProgress } from '../progress';
import { resolveBaseBackupTools } from './cluster';
import { findTarMembers } from './tar';
import type { BaseBackupDeps } from './take';

export interface VerifyBaseBackupInput {
  readonly systemIdentifier: string;
  readonly backupId: string;
  readonly kind: BaseBackupKind;
  readonly sizeBytes: number;
  readonly sha256: string;
  /** The server's major version: pg_verifybackup of at least that version. */
  readonly serverMajor: number;
  readonly parent?: Pick<BaseBackupManifest, 'id' | 'startLsn' | 'timeline'>;
}

export interface VerifyBaseBackupResult {
  readonly rawBytes: number;
  readonly label: BackupLabel;
  readonly pgManifest: PgManifestSummary & {
    readonly file: string;
    readonly sizeBytes: number;
    readonly sha256: string;
  };
  readonly verification: BaseBackupVerification;
}

const HEARTBEAT_MS = 3000;
const TAR = 'base.tar';

/**
 * Proves a stored base backup before its manifest is written, reading the stored object back: its
 * size and SHA-256 and every zstd frame while it is decompressed into a scratch folder, then
 * `pg_verifybackup --no-parse-wal` on that tar with its own backup_manifest (the manifest's
 * checksum, the system identifier in pg_control, every file's size and SHA-256; tar backups
 * cannot have their WAL parsed by pg_waldump), then dbops' own checks: the cluster, and for an
 * incremental backup the link to its parent that pg_combinebackup requires. The backup_manifest
 * proven here becomes its own object (the next incremental reads it).
 *
 * The tar is written to local disk for this check only (its raw size, removed at the end):
 * pg_verifybackup reads regular files only (a pipe is refused) and the PostgreSQL build may lack
 * zstd (the dev stack's does), so it cannot read the stored object itself.
 */
export async function verifyBaseBackup(
  deps: BaseBackupDeps,
  input: VerifyBaseBackupInput,
): Promise<VerifyBaseBackupResult> {
  const tools = await resolveBaseBackupTools(deps.pg.binDir, input.serverMajor);
  const store = createBackupStore(deps.storage);
  const key = baseBackupObjectKey(input.systemIdentifier, input.backupId, BASE_BACKUP_FILES.archive);
  const broken = (what: string) =>
    failure(
      FailureType.IntegrityCheckFailed,
      `base backup ${input.backupId}: ${store.describe(key)} ${what}`,
    );
  const scratch = await mkdtemp(
    path.join(deps.tempDir ?? os.tmpdir(), `dbops-basebackup-verify-${input.backupId}-`),
  );
  const progress = { phase: 'reading back', bytes: 0 };
  try {
    const head = await store.head(key);
    if (!head) throw broken('is missing');
    if (head.size !== input.sizeBytes) throw broken(`is ${head.size} bytes, expected ${input.sizeBytes}`);
    return await withProgress(
      { everyMs: HEARTBEAT_MS, cancelled: 'base backup verification cancelled' },
      () => ({ ...progress }),
      async (kills) => {
        const tar = path.join(scratch, TAR);
        const read = await decompressStored(store, key, tar, kills, progress);
        if (read.decodeError) throw broken(`does not decompress: ${read.decodeError}`);
        if (read.bytes !== input.sizeBytes)
          throw broken(`read ${read.bytes} bytes, expected ${input.sizeBytes}`);
        if (read.sha256 !== input.sha256)
          throw broken(`has SHA-256 ${read.sha256}, expected ${input.sha256}`);
        progress.phase = 'pg_verifybackup';
        const own = await extractOwnFiles(tar, scratch, broken);
        const verified = await runPgVerifybackup(tools.path('pg_verifybackup'), scratch, kills, broken);
        const problem = clusterProblem(input, own.label, own.summary);
        if (problem) throw broken(problem);
        progress.phase = 'storing backup_manifest';
        const pgManifest = await putPgManifest(store, input, own.manifestFile);
        const rawBytes = (await stat(tar)).size;
        return {
          rawBytes,
          label: own.label,
          pgManifest: { ...own.summary, ...pgManifest },
          verification: {
            verdict: 'passed',
            tool: `pg_verifybackup ${tools.version}`,
            checks: [
              `size ${input.sizeBytes} B + sha256 + zstd to the end (${rawBytes} B)`,
              `pg_verifybackup --no-parse-wal: ${verified}`,
              `${own.summary.files} files, cluster ${own.summary.systemIdentifier}`,
              input.parent ? `incremental on ${input.parent.id} (from ${input.parent.startLsn})` : 'full',
            ].join(', '),
            verifiedAt: new Date().toISOString(),
          },
        };
      },
    );
  } finally {
    await rm(scratch, { recursive: true, force: true });
    await store.close();
  }
}

/** One read of the stored object: hashed, and decompressed by zstd into `tar`. A decoder failure is kept: the digest is judged first. */
async function decompressStored(
  store: BackupStore,
  key: string,
  tar: string,
  kills: (() => void)[],
  progress: { bytes: number },
): Promise<{ bytes: number; sha256: string; decodeError?: string }> {
  const local = store.localFile ? await store.localFile(key) : undefined;
  // A local store: zstd reads the file itself, hashed beside it; S3: the object through Node into zstd.
  const zstd = spawn('zstd', ['-d', '-q', '-f', '-o', tar, local ?? '-'], {
    env: toolEnv(),
    stdio: [local ? 'ignore' : 'pipe', 'ignore', 'pipe'],
  });
  kills.push(() => zstd.kill('SIGKILL'));
  const tail = new StderrTail();
  tail.attach(zstd.stderr);
  const exited = exitOf(zstd);
  const signal = Context.current().cancellationSignal;
  let digest: FileDigest | HashTap;
  const counter = setInterval(() => (progress.bytes = digest.bytes), 500);
  try {
    if (local) {
      const fileDigest = new FileDigest();
      digest = fileDigest;
      await fileDigest.read(local, signal);
    } else {
      const tap = new HashTap();
      digest = tap;
      zstd.stdin!.on('error', () => undefined);
      await pipeline(await store.get(key), tap, zstd.stdin!, { signal }).catch((err: Error) => {
        // zstd closing its input early is its own failure (judged below); anything else is the store's.
        if ((err as NodeJS.ErrnoException).code !== 'EPIPE') throw err;
      });
    }
  } finally {
    clearInterval(counter);
  }
  const { code, signal: killed } = await exited;
  const decodeError =
    code === 0
      ? undefined
      : `zstd -d ${killed ? `killed by ${killed}` : `exited ${code}`}: ${tail.toString()}`;
  return { bytes: digest.bytes, sha256: digest.digest(), ...(decodeError !== undefined && { decodeError }) };
}

/** backup_label and backup_manifest out of the tar: the label parsed, the manifest as a file beside it (pg_verifybackup reads it there). */
async function extractOwnFiles(tar: string, dir: string, broken: (what: string) => Error) {
  let members;
  try {
    members = (
      await findTarMembers(tar, ['backup_label', 'backup_manifest'], Context.current().cancellationSignal)
    ).members;
  } catch (err) {
    throw broken(`is not a readable tar archive: ${(err as Error).message}`);
  }
  const label = members.get('backup_label');
  const manifest = members.get('backup_manifest');
  if (!label || !manifest)
    throw broken(`has no ${label ? 'backup_manifest' : 'backup_label'}: it is not a pg_basebackup tar`);
  const manifestFile = path.join(dir, 'backup_manifest');
  const handle = await open(tar, 'r');
  try {
    const labelText = Buffer.alloc(label.size);
    await handle.read(labelText, 0, label.size, label.offset);
    await pipeline(
      createReadStream(tar, { start: manifest.offset, end: manifest.offset + manifest.size - 1 }),
      createWriteStream(manifestFile),
    );
    try {
      return {
        label: parseBackupLabel(labelText.toString('utf8')),
        summary: summarizePgManifest(await readFile(manifestFile, 'utf8')),
        manifestFile,
      };
    } catch (err) {
      throw broken((err as Error).message);
    }
  } finally {
    await handle.close();
  }
}

/** pg_verifybackup on the folder holding base.tar and backup_manifest; returns its verdict line. */
async function runPgVerifybackup(
  tool: string,
  dir: string,
  kills: (() => void)[],
  broken: (what: string) => Error,
): Promise<string> {
  const child = spawn(tool, ['--no-parse-wal', dir], { env: toolEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  kills.push(() => child.kill('SIGKILL'));
  const out = new StderrTail(500);
  const err = new StderrTail();
  out.attach(child.stdout);
  err.attach(child.stderr);
  const { code, signal } = await exitOf(child);
  if (code !== 0)
    throw broken(
      `fails pg_verifybackup (${signal ? `killed by ${signal}` : `exit ${code}`}): ${err.toString() || out.toString()}`,
    );
  return out.toString() || 'backup successfully verified';
}

/** Not this cluster's backup, or an incremental one that does not follow its parent. */
function clusterProblem(
  input: VerifyBaseBackupInput,
  label: BackupLabel,
  summary: PgManifestSummary,
): string | undefined {
  if (summary.systemIdentifier !== input.systemIdentifier)
    return `is a backup of cluster ${summary.systemIdentifier}, not ${input.systemIdentifier}`;
  if (input.kind === 'full')
    return label.incrementalFrom ? 'is an incremental backup, but a full one was taken' : undefined;
  if (!input.parent) return 'is incremental, with no parent to check it against';
  const link = chainLinkProblem(input.parent, label);
  return link && `does not follow its parent: ${link}`;
}

/** Stores the proven backup_manifest as its own object (an incremental backup's --incremental input). */
async function putPgManifest(store: BackupStore, input: VerifyBaseBackupInput, file: string) {
  const key = baseBackupObjectKey(input.systemIdentifier, input.backupId, BASE_BACKUP_FILES.pgManifest);
  const digest = await new FileDigest().read(file);
  await store.put(key, createReadStream(file), { signal: Context.current().cancellationSignal });
  return { file: BASE_BACKUP_FILES.pgManifest, sizeBytes: digest.bytes, sha256: digest.digest() };
}
