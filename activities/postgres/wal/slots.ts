import type { Client } from 'pg';
import { FailureType, failure } from '../../../common/failures';
import { parseLsn, segmentTimeline } from '../../../common/pitr';

/**
 * The archiver's two physical replication slots. pg_receivewal advances the slot it streams from as
 * soon as it has flushed WAL into its spool, before that WAL is in the store; if the spool is then
 * lost (a worker that dies with segments not yet uploaded, the next attempt on another machine)
 * the server may recycle WAL that exists nowhere else. So the configured slot (the guard) is never
 * streamed from: dbops advances it only past segments the store holds, and the server keeps every
 * byte the store lacks, whatever happens to the spool. pg_receivewal streams from `<slot>_recv`,
 * which is reset to the guard's position whenever the spool is empty.
 */
export interface WalSlots {
  readonly guard: string;
  readonly stream: string;
}

/** The longest configured slot name: `_recv` must still fit PostgreSQL's 63 characters. */
export const MAX_WAL_SLOT_NAME = 58;

export function walSlots(slot: string): WalSlots {
  return { guard: slot, stream: `${slot}_recv` };
}

/** The server's WAL: cluster, current position and timeline, segment size, major version. */
export interface ServerWal {
  readonly systemId: string;
  readonly timeline: number;
  readonly segmentBytes: number;
  readonly currentLsn: number;
  readonly major: number;
}

export async function serverWal(client: Client): Promise<ServerWal> {
  const r = await client.query<{
    system_id: string;
    walfile: string;
    segment_bytes: string;
    current: string;
    version: string;
    recovery: boolean;
  }>(
    `SELECT (SELECT system_identifier::text FROM pg_control_system()) AS system_id,
            CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END AS walfile,
            (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS segment_bytes,
            CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current,
            current_setting('server_version_num') AS version, pg_is_in_recovery() AS recovery`,
  );
  const row = r.rows[0]!;
  if (row.recovery)
    throw failure(
      FailureType.Misconfigured,
      'the server is a standby (in recovery): archive the WAL of the primary (point PGHOST at it)',
    );
  return {
    systemId: row.system_id,
    timeline: parseInt(segmentTimeline(row.walfile), 16),
    segmentBytes: Number(row.segment_bytes),
    currentLsn: parseLsn(row.current),
    major: Math.floor(Number(row.version) / 10000),
  };
}

export interface SlotRow {
  readonly name: string;
  readonly type: string;
  readonly activePid: number | null;
  readonly restartLsn: number | null;
  /** reserved, extended, unreserved or lost (PostgreSQL 13+). */
  readonly walStatus: string | null;
}

export async function readSlots(client: Client, slots: WalSlots): Promise<Map<string, SlotRow>> {
  const r = await client.query<{
    slot_name: string;
    slot_type: string;
    active_pid: number | null;
    restart_lsn: string | null;
    wal_status: string | null;
  }>(
    `SELECT slot_name, slot_type, active_pid, restart_lsn::text, wal_status
       FROM pg_replication_slots WHERE slot_name = ANY($1)`,
    [[slots.guard, slots.stream]],
  );
  return new Map(
    r.rows.map((row) => [
      row.slot_name,
      {
        name: row.slot_name,
        type: row.slot_type,
        activePid: row.active_pid,
        restartLsn: row.restart_lsn === null ? null : parseLsn(row.restart_lsn),
        walStatus: row.wal_status,
      },
    ]),
  );
}

/** A slot that no longer holds WAL for us: missing, lost (max_slot_wal_keep_size) or never reserved. */
export function slotUnusable(row: SlotRow | undefined): string | undefined {
  if (!row) return 'missing';
  if (row.type !== 'physical') return `a ${row.type} slot, not a physical one`;
  if (row.walStatus === 'lost') return 'lost (its WAL was removed, max_slot_wal_keep_size)';
  if (row.restartLsn === null) return 'holding no WAL (restart_lsn is NULL)';
  return undefined;
}

/** Creates the guard slot reserving WAL from now on (the redo point of the last checkpoint). */
export async function createGuardSlot(client: Client, slots: WalSlots): Promise<void> {
  await client.query('SELECT pg_create_physical_replication_slot($1, true)', [slots.guard]);
}

export async function dropSlot(client: Client, name: string): Promise<void> {
  await releaseSlot(client, name);
  await client.query(
    'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1',
    [name],
  );
}

/**
 * Ends whatever streams from `name`: only an archiver of ours streams from its slot, e.g. the
 * pg_receivewal a killed worker left running, which would otherwise hold the slot for good.
 */
export async function releaseSlot(client: Client, name: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const r = await client.query<{ pid: number | null }>(
      'SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1',
      [name],
    );
    const pid = r.rows[0]?.pid;
    if (pid === null || pid === undefined) return;
    await client.query('SELECT pg_terminate_backend($1)', [pid]);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw failure(FailureType.Unavailable, `replication slot ${name} is still in use after 5 s`);
}

/** The stream slot starts again where the guard is: everything the store lacks gets streamed. */
export async function resetStreamSlot(client: Client, slots: WalSlots): Promise<void> {
  await dropSlot(client, slots.stream);
  await client.query('SELECT pg_copy_physical_replication_slot($1, $2)', [slots.guard, slots.stream]);
}

/** Lets the server recycle WAL before `lsn` (the end of the newest segment the store holds). */
export async function advanceGuard(client: Client, slots: WalSlots, lsn: string): Promise<void> {
  await client.query(
    `SELECT pg_replication_slot_advance(slot_name, $2::pg_lsn) FROM pg_replication_slots
      WHERE slot_name = $1 AND restart_lsn < $2::pg_lsn`,
    [slots.guard, lsn],
  );
}

/** One look at how far behind the server the archive is; LSNs as byte positions. */
export interface WalLagRow {
  readonly currentLsn: number;
  /** What pg_receivewal has flushed into the spool (its walsender's flush_lsn). */
  readonly receivedLsn: number | null;
  /** pg_stat_replication.flush_lag in seconds (NULL there when idle and caught up). */
  readonly flushLagSeconds: number | null;
  readonly guard: SlotRow | undefined;
  readonly stream: SlotRow | undefined;
}

export async function readLag(client: Client, slots: WalSlots): Promise<WalLagRow> {
  const [current, slotRows] = await Promise.all([
    client.query<{ current: string; flushed: string | null; lag: number | null }>(
      `SELECT pg_current_wal_lsn()::text AS current, r.flush_lsn::text AS flushed,
              EXTRACT(epoch FROM r.flush_lag)::float8 AS lag
         FROM (SELECT 1) AS one
         LEFT JOIN pg_replication_slots s ON s.slot_name = $1
         LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid`,
      [slots.stream],
    ),
    readSlots(client, slots),
  ]);
  const row = current.rows[0]!;
  return {
    currentLsn: parseLsn(row.current),
    receivedLsn: row.flushed === null ? null : parseLsn(row.flushed),
    flushLagSeconds: row.lag,
    guard: slotRows.get(slots.guard),
    stream: slotRows.get(slots.stream),
  };
}
