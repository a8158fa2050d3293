import { execFile } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Client } from 'pg';
import { FailureType, failure } from '../../../common/failures';
import { describeRecoveryTarget, type RecoveryTarget } from '../../../common/pitr';
import { toolEnv } from '../binaries';
import type { ScratchInstance } from './instance';
import type { WalFeed } from './wal-feed';

/**
 * The settings PostgreSQL compares with the ones the WAL was written under: a hot standby refuses
 * to start when any is lower than on the primary, so the copy takes them from its own pg_control.
 */
const CONTROL_SETTINGS: Record<string, string> = {
  'max_connections setting': 'max_connections',
  'max_worker_processes setting': 'max_worker_processes',
  'max_wal_senders setting': 'max_wal_senders',
  'max_prepared_xacts setting': 'max_prepared_transactions',
  'max_locks_per_xact setting': 'max_locks_per_transaction',
};

export async function controlSettings(binDir: string, dataDir: string): Promise<Record<string, string>> {
  const { stdout } = await promisify(execFile)(path.join(binDir, 'pg_controldata'), ['-D', dataDir], {
    env: { ...toolEnv(), LANG: 'C' },
  });
  const out: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const [label, value] = line.split(/:\s+/, 2);
    const setting = label && CONTROL_SETTINGS[label.trim()];
    if (setting && value && /^\d+$/.test(value.trim())) out[setting] = value.trim();
  }
  return out;
}

/** `2026-12-05 01:17:11.514+00`: recovery_target_time takes no ISO 8601 `T…Z` form. */
export function pgTimestamp(iso: string): string {
  return `${new Date(iso).toISOString().replace('T', ' ').replace('Z', '')}+00`;
}

/** The recovery settings for `target`: pause there (a read-only, consistent copy) or run to the archive's end. */
export function recoverySettings(target: RecoveryTarget, restoreCommand: string): Record<string, string> {
  const base = { restore_command: restoreCommand, recovery_target_timeline: 'latest' };
  if (target.kind === 'latest') return base;
  return {
    ...base,
    ...(target.kind === 'time'
      ? { recovery_target_time: pgTimestamp(target.time) }
      : { recovery_target_lsn: target.lsn }),
    // Inclusive: a transaction committed exactly at the target is kept, the next one is not.
    recovery_target_inclusive: 'on',
    recovery_target_action: 'pause',
  };
}

export interface Reached {
  readonly reachedLsn: string;
  readonly lastTransactionAt: string | null;
}

/** Recovery stopped where it should: paused at the target, or (latest) promoted at the archive's end. */
async function reachedTarget(c: Client, target: RecoveryTarget): Promise<Reached | undefined> {
  const r = await c.query<{
    recovering: boolean;
    paused: string | null;
    lsn: string | null;
    last: Date | null;
  }>(
    `SELECT pg_is_in_recovery() AS recovering,
            CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() END AS paused,
            coalesce(pg_last_wal_replay_lsn(), pg_current_wal_lsn())::text AS lsn,
            pg_last_xact_replay_timestamp() AS last`,
  );
  const row = r.rows[0]!;
  const done = target.kind === 'latest' ? !row.recovering : row.paused === 'paused';
  if (!done) return undefined;
  return { reachedLsn: row.lsn ?? '0/0', lastTransactionAt: row.last ? row.last.toISOString() : null };
}

/**
 * Why recovery stopped short, in the operator's terms: the archive's gap or end (from the feed), or
 * PostgreSQL's own last words.
 */
async function stoppedShort(
  instance: ScratchInstance,
  feed: WalFeed,
  target: RecoveryTarget,
): Promise<Error> {
  const fed = feed.current;
  const log = await instance.logTail(8);
  if (fed.gap)
    return failure(
      FailureType.IntegrityCheckFailed,
      `cannot recover to ${describeRecoveryTarget(target)}: WAL segment ${fed.gap} is missing from the archive while later segments exist (a gap; \`dbops wal check\` lists it). Recover to a point before it (the last segment replayed was ${fed.lastServed ?? 'none'}), or restore the segment into the archive.\n${log}`,
    );
  if (/recovery ended before configured recovery target was reached/.test(log))
    return failure(
      FailureType.Refused,
      `cannot recover to ${describeRecoveryTarget(target)}: the archived WAL ends before it (the last segment is ${fed.lastServed ?? 'none'}, ${fed.endOfArchive ?? 'none'} is not archived yet): check \`dbops wal status\` or choose an earlier target`,
    );
  return failure(FailureType.ProcessFailed, `the temporary PostgreSQL of the recovery stopped: ${log}`);
}

/** Polls the recovering server until it stops at the target; fails when it exits or the feed fails. */
export async function waitForTarget(o: {
  readonly instance: ScratchInstance;
  readonly feed: WalFeed;
  readonly target: RecoveryTarget;
  readonly database: string;
  readonly onProgress: (replayLsn: string | null) => void;
  readonly signal: AbortSignal;
}): Promise<Reached> {
  let exited = false;
  void o.instance.exited.then(() => (exited = true));
  let client: Client | undefined;
  try {
    for (;;) {
      if (o.signal.aborted) throw failure(FailureType.Unavailable, 'recovery cancelled');
      o.feed.check();
      if (exited) throw await stoppedShort(o.instance, o.feed, o.target);
      try {
        client ??= await o.instance.connect(o.database);
        const reached = await reachedTarget(client, o.target);
        if (reached) return reached;
        const lsn = await client.query<{ lsn: string | null }>(
          'SELECT pg_last_wal_replay_lsn()::text AS lsn',
        );
        o.onProgress(lsn.rows[0]?.lsn ?? null);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === '3D000')
          throw failure(
            FailureType.NotFound,
            `database ${o.database} did not exist at ${describeRecoveryTarget(o.target)} (the recovered cluster has no such database)`,
          );
        // Not accepting connections yet (replaying up to consistency), or the server just exited.
        await client?.end().catch(() => undefined);
        client = undefined;
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  } finally {
    await client?.end().catch(() => undefined);
  }
}

/** A clean scratch folder for this recovery (an earlier attempt's leftovers go first). */
export async function freshFolder(dir: string): Promise<string> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}
