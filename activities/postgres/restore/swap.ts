import type { Client } from 'pg';
import { FailureType, failure } from '../../../common/failures';
import {
  type BlockedMark,
  type PreRestoreComment,
  type SwappedInMark,
  parseMark,
} from '../../../common/restore';
import { failpoint } from '../../failpoints';
import { withPg, type PgConnectionSettings } from '../connection';
import {
  alterDatabase,
  checkedName,
  commentOnDatabase,
  databaseComment,
  databaseExists,
  maintenanceDb,
  renameDatabase,
} from './databases';

async function sessionsOn(c: Client, name: string): Promise<number> {
  const r = await c.query<{ n: string }>(
    'SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
    [name],
  );
  return Number(r.rows[0]!.n);
}

async function terminateSessions(c: Client, name: string, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    await c.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [name],
    );
    if ((await sessionsOn(c, name)) === 0) return;
    if (Date.now() > until) {
      throw failure(
        FailureType.TimedOut,
        `sessions on database ${name} did not end within ${deadlineMs} ms after pg_terminate_backend`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function inTransaction(c: Client, fn: () => Promise<void>): Promise<void> {
  await c.query('BEGIN');
  try {
    await fn();
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** Is the server session `pid`, started at `backendStart`, still there (pids are reused). */
async function sessionAlive(c: Client, pid: number, backendStart: string): Promise<boolean> {
  const r = await c.query(
    'SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND backend_start = $2::timestamptz',
    [pid, backendStart],
  );
  return r.rowCount === 1;
}

/** Connections allowed again and the comment from before the block, in one transaction. */
async function letConnectionsIn(c: Client, name: string, previousComment: string | null): Promise<void> {
  await inTransaction(c, async () => {
    await commentOnDatabase(c, name, previousComment);
    await alterDatabase(c, name, 'ALLOW_CONNECTIONS true');
  });
}

/**
 * Blocks new connections to `target`, committed together with the blocked mark naming this
 * workflow and this server session. Undefined when the target already refused connections: an
 * operator's block (no mark of ours), which the cut-over leaves on the database it keeps.
 */
async function blockConnections(
  c: Client,
  target: string,
  workflowId: string,
): Promise<BlockedMark | undefined> {
  const r = await c.query<{ allow: boolean; comment: string | null; pid: number; started: string }>(
    `SELECT d.datallowconn AS allow, shobj_description(d.oid, 'pg_database') AS comment,
            a.pid, a.backend_start::text AS started
       FROM pg_database d, pg_stat_activity a WHERE d.datname = $1 AND a.pid = pg_backend_pid()`,
    [target],
  );
  const row = r.rows[0]!;
  if (!row.allow) return undefined;
  const mark: BlockedMark = {
    dbops: 'blocked',
    workflowId,
    pid: row.pid,
    backendStart: row.started,
    previousComment: row.comment,
  };
  await inTransaction(c, async () => {
    await commentOnDatabase(c, target, JSON.stringify(mark));
    await alterDatabase(c, target, 'ALLOW_CONNECTIONS false');
  });
  return mark;
}

/** 'stale': a dead cut-over's block found by a dry run, which changes nothing. */
export type BlockRelease = 'not-blocked' | 'released' | 'held' | 'stale';

/**
 * Lets connections into `name` again when a dbops cut-over blocked it and is no longer there to do
 * so: its server session ended (the worker died; the workflow may be terminated), or it was an
 * earlier attempt of `ownWorkflowId` (a retry; that attempt's session, if it lingers, is ended
 * first). 'held': a live cut-over of another workflow is under way. A database refusing
 * connections without the blocked mark (an operator's ALTER DATABASE) is never touched.
 */
export async function releaseStaleBlock(
  c: Client,
  name: string,
  ownWorkflowId?: string,
  dryRun = false,
): Promise<BlockRelease> {
  const mark = parseMark(await databaseComment(c, name));
  if (mark?.dbops !== 'blocked') return 'not-blocked';
  const until = Date.now() + 10_000;
  while (await sessionAlive(c, mark.pid, mark.backendStart)) {
    if (mark.workflowId !== ownWorkflowId) return 'held';
    if (dryRun) return 'stale';
    if (Date.now() > until)
      throw failure(
        FailureType.TimedOut,
        `the session of an earlier cut-over attempt (pid ${mark.pid}) did not end`,
      );
    await c.query('SELECT pg_terminate_backend($1)', [mark.pid]);
    await new Promise((r) => setTimeout(r, 50));
  }
  if (dryRun) return 'stale';
  await letConnectionsIn(c, name, mark.previousComment);
  return 'released';
}

function swappedInBy(comment: string | null, from: string, workflowId: string): boolean {
  const mark = parseMark(comment);
  return mark?.dbops === 'swapped_in' && mark.from === from && mark.workflowId === workflowId;
}

export interface SwapInput {
  readonly target: string;
  /** The database that becomes `target` (the restored shadow, or the kept one on rollback). */
  readonly incoming: string;
  /** The name the current `target` gets (a pre-restore name), kept for cleanup and rollback. */
  readonly outgoing: string;
  /** The workflow swapping: named in the marks it leaves (blocked, swapped_in, pre_restore). */
  readonly workflowId: string;
  /** The mark `incoming` must carry: the shadow this workflow made, or the copy a restore kept. */
  readonly incomingMark: { readonly dbops: 'restore' | 'pre_restore'; readonly workflowId: string };
  /** Until when the replaced database is kept (its pre_restore mark). */
  readonly keepUntil: string;
}

export interface SwapResult {
  readonly cutoverMs: number;
  readonly terminatedSessions: number;
  readonly targetExisted: boolean;
  /**
   * True when a previous attempt of this run had already swapped (idempotent retry), proven by the
   * swapped_in mark that attempt left on the target, not assumed from the names alone.
   */
  readonly alreadyDone: boolean;
}

/** Refuses to swap in a database that is not the one this swap is about (a look-alike name). */
async function assertIncomingMark(c: Client, input: SwapInput): Promise<void> {
  const mark = parseMark(await databaseComment(c, input.incoming));
  const want = input.incomingMark;
  if (
    mark?.dbops === want.dbops &&
    mark.workflowId === want.workflowId &&
    (mark.dbops !== 'pre_restore' || mark.target === input.target)
  )
    return;
  throw failure(
    FailureType.Refused,
    `database ${input.incoming} does not carry the mark of ${want.dbops === 'restore' ? 'the shadow made' : `the copy of ${input.target} kept`} by workflow ${want.workflowId}: refusing to swap it in; ${input.target} is unchanged`,
  );
}

/**
 * The cut-over: block new connections to `target` (with a mark saying who, so that whoever comes
 * next can undo a block whose owner died), end its sessions, then in ONE transaction rename target
 * → outgoing and incoming → target (clients see the old or the new database, never none), mark
 * both and let connections in again. Idempotent: a retry first lets in the connections an earlier
 * attempt blocked, and believes "already done" only from the swapped_in mark on the target.
 */
export async function swapDatabases(pg: PgConnectionSettings, input: SwapInput): Promise<SwapResult> {
  const { target, incoming, outgoing, workflowId } = input;
  for (const n of [target, incoming, outgoing]) checkedName(n);
  return withPg(pg, maintenanceDb(pg, [target, incoming, outgoing]), async (c) => {
    if ((await releaseStaleBlock(c, target, workflowId)) === 'held') {
      throw failure(
        FailureType.Refused,
        `another dbops cut-over is blocking connections to ${target} right now: refusing to run two at once; ${target} is unchanged`,
      );
    }
    const [t, i, o] = [
      await databaseExists(c, target),
      await databaseExists(c, incoming),
      await databaseExists(c, outgoing),
    ];
    // A retry after a committed swap finds incoming gone and target present, and so does a swap
    // whose incoming database was dropped meanwhile (db cleanup of a kept copy or of an old shadow):
    // only the mark this swap wrote on target tells them apart. Never report the second as done.
    if (!i && t && swappedInBy(await databaseComment(c, target), incoming, workflowId)) {
      return { cutoverMs: 0, terminatedSessions: 0, targetExisted: o, alreadyDone: true };
    }
    if (!i)
      throw failure(
        FailureType.NotFound,
        `database ${incoming} does not exist: nothing to swap into ${target}, which is unchanged` +
          (t ? ' (it was dropped, e.g. by db cleanup, or never made; no swap of this run put it there)' : ''),
      );
    await assertIncomingMark(c, input);
    if (o)
      throw failure(FailureType.Refused, `database ${outgoing} already exists: refusing to overwrite it`);
    const started = performance.now();
    const terminated = await renameWithTargetBlocked(c, input, t);
    await failpoint('restore.cutover.after-swap');
    return {
      cutoverMs: Math.round(performance.now() - started),
      terminatedSessions: terminated,
      targetExisted: t,
      alreadyDone: false,
    };
  });
}

/** Blocks and empties the target (when it exists), then the renaming transaction; the sessions it ended. */
async function renameWithTargetBlocked(c: Client, input: SwapInput, t: boolean): Promise<number> {
  const { target, incoming, outgoing, workflowId } = input;
  let terminated = 0;
  let block: BlockedMark | undefined;
  let committed = false;
  try {
    await terminateSessions(c, incoming, 5000);
    if (t) {
      block = await blockConnections(c, target, workflowId);
      await failpoint('restore.cutover.after-block');
      terminated = await sessionsOn(c, target);
      await terminateSessions(c, target, 10_000);
    }
    const kept: PreRestoreComment = { dbops: 'pre_restore', target, workflowId, keepUntil: input.keepUntil };
    const swappedIn: SwappedInMark = { dbops: 'swapped_in', from: incoming, workflowId };
    for (let attempt = 1; ; attempt++) {
      try {
        await inTransaction(c, async () => {
          if (t) await renameDatabase(c, target, outgoing);
          await renameDatabase(c, incoming, target);
          if (t) await commentOnDatabase(c, outgoing, JSON.stringify(kept));
          // An operator's own block (no mark of ours) stays on the database they blocked.
          if (block) await alterDatabase(c, outgoing, 'ALLOW_CONNECTIONS true');
          await commentOnDatabase(c, target, JSON.stringify(swappedIn));
          await alterDatabase(c, target, 'ALLOW_CONNECTIONS true');
        });
        committed = true;
        return terminated;
      } catch (err) {
        // 55006: a session slipped in (e.g. a superuser) between termination and rename: end it and retry.
        if ((err as { code?: string }).code !== '55006' || attempt >= 5) throw err;
        if (t) await terminateSessions(c, target, 5000);
        await terminateSessions(c, incoming, 5000);
      }
    }
  } finally {
    if (block && !committed) await letConnectionsIn(c, target, block.previousComment).catch(() => undefined);
  }
}

export interface CutOverState {
  /** This workflow's swap committed: `target` holds what it swapped in. */
  readonly swapped: boolean;
  /** The replaced database is kept under `outgoing` (with this workflow's pre_restore mark). */
  readonly kept: boolean;
  /** Connections to `target` that this workflow (or a dead cut-over) had blocked were let in again. */
  readonly released: boolean;
}

/**
 * After a cut-over failed or was cancelled: lets connections in again where this workflow (or a
 * cut-over nobody runs any more) blocked them, and reads from the marks whether the swap committed,
 * so the report says what the database shows rather than what the error suggests.
 */
export async function settleCutOver(
  pg: PgConnectionSettings,
  input: { target: string; incoming: string; outgoing: string; workflowId: string },
): Promise<CutOverState> {
  const { target, incoming, outgoing, workflowId } = input;
  for (const n of [target, incoming, outgoing]) checkedName(n);
  return withPg(pg, maintenanceDb(pg, [target, incoming, outgoing]), async (c) => {
    const released = (await releaseStaleBlock(c, target, workflowId)) === 'released';
    const swapped = swappedInBy(await databaseComment(c, target), incoming, workflowId);
    const keptMark = parseMark(await databaseComment(c, outgoing));
    const kept = keptMark?.dbops === 'pre_restore' && keptMark.workflowId === workflowId;
    return { swapped, kept, released };
  });
}
