import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { quoteIdent, withPg, type PgConnectionSettings } from '../../activities/postgres/connection';
import type { TableRows } from './rows';

/** Thrown in a lane that stops because another one failed (whose error is the one to report). */
export class LaneAborted extends Error {
  constructor() {
    super('seed aborted: another COPY connection failed');
  }
}

/** Settles all; throws the first real failure (not a lane that only stopped because of it). */
export async function firstFailure(work: Promise<unknown>[]): Promise<void> {
  const errors = (await Promise.allSettled(work))
    .filter((r) => r.status === 'rejected')
    .map((r) => r.reason as unknown);
  if (errors.length) throw errors.find((e) => !(e instanceof LaneAborted)) ?? errors[0];
}

/**
 * Work on connections of its own, each piece in one bulk-load transaction; the first failure stops
 * the other lanes (they see `failed` and throw LaneAborted). Keeps the time spent per key.
 */
export class Lanes {
  failed = false;

  constructor(
    private readonly pg: PgConnectionSettings,
    private readonly database: string,
    private readonly superuser: boolean,
    /** Milliseconds per key (timed). */
    readonly ms: Record<string, number> = {},
  ) {}

  /** Its own connection and transaction. */
  inTransaction(fn: (lc: Client) => Promise<void>): Promise<void> {
    return withPg(this.pg, this.database, async (lc) => {
      await lc.query('BEGIN');
      try {
        await bulkSession(lc, this.superuser);
        await fn(lc);
        await lc.query('COMMIT');
      } catch (err) {
        this.failed = true;
        await lc.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  /** Each function in a lane of its own, all at once. */
  all(fns: ((lc: Client) => Promise<void>)[]): Promise<void> {
    return firstFailure(fns.map((fn) => this.inTransaction(fn)));
  }

  async timed(key: string, fn: () => Promise<unknown>): Promise<void> {
    const t0 = Date.now();
    await fn();
    this.ms[key] = (this.ms[key] ?? 0) + Date.now() - t0;
  }

  /** Waits (polling) until `ready()`, or stops when another lane failed. */
  async waitFor(ready: () => boolean): Promise<void> {
    while (!ready()) {
      this.stopIfFailed();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  stopIfFailed(): void {
    if (this.failed) throw new LaneAborted();
  }
}

async function bulkSession(c: Client, superuser: boolean): Promise<void> {
  // The generator keeps references consistent; skipping per-row FK triggers doubles COPY speed.
  if (superuser) await c.query('SET LOCAL session_replication_role = replica');
  await c.query('SET LOCAL synchronous_commit = off');
  await c.query("SET LOCAL maintenance_work_mem = '256MB'");
  // Two connections on two cores are busy already: a parallel index build only adds contention.
  await c.query('SET LOCAL max_parallel_maintenance_workers = 0');
}

/**
 * Streams one table's rows into COPY (backpressure via pipeline). A FREEZE target is emptied in
 * this transaction first (it is empty already): COPY then writes its rows frozen and all-visible.
 */
export async function copyTable(
  c: Client,
  rows: TableRows,
  onRows: (n: number) => void,
  aborted: () => boolean,
): Promise<void> {
  function* chunks() {
    for (const chunk of rows.chunks()) {
      if (aborted()) throw new LaneAborted();
      yield chunk.data;
      onRows(chunk.rows);
    }
  }
  const options = [rows.binary ? 'FORMAT binary' : '', rows.freeze ? 'FREEZE' : ''].filter(Boolean);
  if (rows.freeze) await c.query(`TRUNCATE ${quoteIdent(rows.target)}`);
  const sql = `COPY ${quoteIdent(rows.target)} (${rows.columns.join(', ')}) FROM STDIN${options.length ? ` WITH (${options.join(', ')})` : ''}`;
  await pipeline(Readable.from(chunks(), { objectMode: false }), c.query(copyFrom(sql)));
}
