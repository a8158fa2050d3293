import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CancelledFailure, Context } from '@temporalio/activity';
import { BASE_BACKUP_FILES, type BaseBackupKind } from '../../../common/basebackup';
import { FailureType, failure } from '../../../common/failures';
import { baseBackupObjectKey, baseBackupPrefix } from '../../../common/pitr';
import { createBackupStore, downloadToFile, type BackupStore, type StorageSettings } from '../../storage';
import { pgChildEnv, type PgConnectionSettings } from '../connection';
import { compress, exitOf, gateOnSuccess, HashTap, StderrTail } from '../dump-pipeline';
import { withProgress } from '../progress';
import {
  type ClusterInfo,
  holdWal,
  incrementalProblem,
  inspectCluster,
  resolveBaseBackupTools,
} from './cluster';

export interface BaseBackupDeps {
  readonly pg: PgConnectionSettings;
  readonly storage: StorageSettings;
  /** Scratch folder base (the parent's backup_manifest, the verification's tar); default os.tmpdir(). */
  readonly tempDir?: string;
}

export interface TakeBaseBackupInput {
  readonly systemIdentifier: string;
  readonly backupId: string;
  readonly kind: BaseBackupKind;
  /** An incremental backup's parent: its backup_manifest is what pg_basebackup --incremental reads. */
  readonly parentId?: string;
}

export interface TakeBaseBackupResult {
  readonly file: string;
  readonly sizeBytes: number;
  readonly sha256: string;
  readonly serverVersion: string;
  readonly pgBasebackupVersion: string;
  readonly startedAt: string;
  readonly stoppedAt: string;
}

const HEARTBEAT_MS = 3000;

/**
 * pg_basebackup's arguments. `-D - -Ft`: one tar stream on stdout (with the backup_manifest as its
 * last member). `-X fetch`: the WAL the backup needs to be consistent travels inside that tar, so
 * each backup restores on its own (`-X stream` cannot write to stdout; `-X none` would make every
 * backup depend on the WAL archive); a temporary slot keeps that WAL meanwhile (holdWal). `--checkpoint=fast`: the backup starts now instead of after a
 * spread checkpoint (up to checkpoint_timeout × checkpoint_completion_target). No secrets here:
 * the connection comes from the environment (pgChildEnv).
 */
export function pgBasebackupArgs(backupId: string, incrementalFrom: string | undefined): string[] {
  return [
    '--pgdata=-',
    '--format=tar',
    '--wal-method=fetch',
    '--checkpoint=fast',
    '--manifest-checksums=SHA256',
    '--no-password',
    `--label=dbops ${backupId}`,
    ...(incrementalFrom === undefined ? [] : [`--incremental=${incrementalFrom}`]),
  ];
}

/**
 * Streams one base backup into the store: pg_basebackup's stdout is read by zstd directly (child to
 * child), zstd's output is hashed on its way into `store.put`, which completes the object only when
 * both exited 0. Nothing touches local disk but an incremental's parent manifest; a cancelled or
 * failed put leaves nothing in the store.
 */
export async function takeBaseBackup(
  deps: BaseBackupDeps,
  input: TakeBaseBackupInput,
): Promise<TakeBaseBackupResult> {
  refuseEncryption(deps.storage);
  const cluster = await sameCluster(deps.pg, input.systemIdentifier);
  if (input.kind === 'incremental') {
    const problem = incrementalProblem(deps.pg, cluster);
    if (problem) throw failure(FailureType.Misconfigured, problem);
    if (input.parentId === undefined)
      throw failure(FailureType.InvalidInput, 'an incremental base backup needs its parent');
  }
  const tools = await resolveBaseBackupTools(deps.pg.binDir, cluster.major);
  const store = createBackupStore(deps.storage);
  const scratch = await mkdtemp(
    path.join(deps.tempDir ?? os.tmpdir(), `dbops-basebackup-${input.backupId}-`),
  );
  const key = baseBackupObjectKey(input.systemIdentifier, input.backupId, BASE_BACKUP_FILES.archive);
  const progress = { phase: 'pg_basebackup', bytes: 0 };
  try {
    // An earlier attempt of this backup, killed with its worker, left an interrupted upload: only this backup writes here.
    await store.sweepInterrupted(`${baseBackupPrefix(input.systemIdentifier, input.backupId)}/`);
    const parentManifest =
      input.parentId === undefined ? undefined : path.join(scratch, 'parent_backup_manifest');
    if (parentManifest !== undefined)
      await downloadToFile(
        store,
        baseBackupObjectKey(input.systemIdentifier, input.parentId!, BASE_BACKUP_FILES.pgManifest),
        parentManifest,
      );
    return await withProgress(
      { everyMs: HEARTBEAT_MS, cancelled: 'base backup cancelled' },
      () => ({ ...progress }),
      async (kills) => {
        const wal = await holdWal(deps.pg, input.backupId);
        const startedAt = new Date().toISOString();
        const stored = await streamToStore(deps, tools.path('pg_basebackup'), input, parentManifest, {
          store,
          key,
          kills,
          progress,
        }).finally(() => wal.release());
        return {
          file: BASE_BACKUP_FILES.archive,
          ...stored,
          serverVersion: cluster.serverVersion,
          pgBasebackupVersion: tools.version,
          startedAt,
          stoppedAt: new Date().toISOString(),
        };
      },
    );
  } finally {
    await rm(scratch, { recursive: true, force: true });
    await store.close();
  }
}

/**
 * DBOPS_BACKUP_AGE_RECIPIENTS promises no plaintext in the store; base backups do not encrypt yet
 * (their proof reads the archive back, which needs the identity), so they are refused, not stored plain.
 */
export function refuseEncryption(storage: StorageSettings): void {
  if (storage.age && storage.age.recipients.length > 0)
    throw failure(
      FailureType.Misconfigured,
      'base backups are not encrypted yet and DBOPS_BACKUP_AGE_RECIPIENTS asks that nothing reach the store in plaintext: unset DBOPS_BACKUP_AGE_RECIPIENTS on this worker to take base backups, or take logical backups ("dbops backup") only',
    );
}

/** The configured server, refused when it is not the cluster the workflow started with (rebuilt meanwhile). */
export async function sameCluster(pg: PgConnectionSettings, systemIdentifier: string): Promise<ClusterInfo> {
  const cluster = await inspectCluster(pg);
  if (cluster.systemIdentifier !== systemIdentifier)
    throw failure(
      FailureType.Refused,
      `the server is now cluster ${cluster.systemIdentifier}, not ${systemIdentifier} (rebuilt with a new initdb since the base backup started): start the base backup again`,
    );
  return cluster;
}

async function streamToStore(
  deps: BaseBackupDeps,
  pgBasebackup: string,
  input: TakeBaseBackupInput,
  parentManifest: string | undefined,
  o: { store: BackupStore; key: string; kills: (() => void)[]; progress: { phase: string; bytes: number } },
): Promise<{ sizeBytes: number; sha256: string }> {
  const ctx = Context.current();
  const child = spawn(pgBasebackup, pgBasebackupArgs(input.backupId, parentManifest), {
    env: pgChildEnv(deps.pg),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  o.kills.push(() => child.kill('SIGKILL'));
  const tail = new StderrTail();
  tail.attach(child.stderr, (line) => {
    ctx.log.info('pg_basebackup', { backupId: input.backupId, line });
  });
  const exited = exitOf(child).then(({ code, signal }) => {
    if (code === 0) return;
    if (ctx.cancellationSignal.aborted)
      throw new CancelledFailure('base backup cancelled: pg_basebackup killed');
    throw pgBasebackupFailed(input, tail.toString(), signal ? `killed by ${signal}` : `exited ${code}`);
  });
  const failed: { err?: unknown } = {};
  exited.catch((err: unknown) => (failed.err = err));
  const zstd = compress('zstd', child.stdout, { handOver: true });
  o.kills.push(() => zstd.kill());
  const hashed = new HashTap();
  const counter = setInterval(() => (o.progress.bytes = hashed.bytes), 500);
  try {
    await o.store.put(
      o.key,
      zstd.stream.pipe(hashed).pipe(
        gateOnSuccess(async () => {
          await exited;
          await zstd.done;
        }),
      ),
      { signal: ctx.cancellationSignal },
    );
  } catch (err) {
    // A store that stopped reading would leave both children blocked on a full pipe: stop them.
    for (const kill of o.kills) kill();
    // pg_basebackup's own failure explains the short stream best.
    throw failed.err ?? err;
  } finally {
    clearInterval(counter);
  }
  o.progress.bytes = hashed.bytes;
  return { sizeBytes: hashed.bytes, sha256: hashed.digest() };
}

/** pg_basebackup's failure, typed: what configuration or a missing summary can fix is not retried. */
function pgBasebackupFailed(input: TakeBaseBackupInput, stderr: string, how: string) {
  const message = `pg_basebackup ${how} for base backup ${input.backupId}: ${stderr || 'no error output'}`;
  if (/WAL summarization is not enabled|summarize_wal/i.test(stderr))
    return failure(FailureType.Misconfigured, `${message}; set summarize_wal = on on the server`);
  if (input.kind === 'incremental' && /WAL summar|incremental/i.test(stderr))
    return failure(
      FailureType.Refused,
      `${message}; the server no longer has the WAL summaries since the parent ${input.parentId}: take a full base backup ("dbops basebackup")`,
    );
  if (
    /replication connection|no pg_hba.conf entry for replication|must be superuser or replication/i.test(
      stderr,
    )
  )
    return failure(
      FailureType.Misconfigured,
      `${message}; the user needs the REPLICATION attribute and pg_hba.conf must allow its replication connections`,
    );
  return failure(FailureType.ProcessFailed, message);
}
