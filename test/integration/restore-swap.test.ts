import { afterAll, describe, expect, it } from 'vitest';
import { failureTypeOf } from '../../common/failures';
import { parseMark, preRestoreDatabaseName } from '../../common/restore';
import { quoteIdent, withPg } from '../../activities/postgres/connection';
import { releaseStaleBlock, swapDatabases, type SwapInput } from '../../activities/postgres/restore/swap';
import { testConfig, uniqueSuffix } from '../helpers/stack';
import { databasesLike, dropDatabasesLike, fingerprint, populate, sql } from './restore-fixtures';

/**
 * The cut-over reports "already done" only when its own swap made the current state, never because
 * the database it should swap in has vanished (a kept pre-restore copy or a shadow dropped by
 * `db cleanup`): that used to make `dbops restore rollback` print success while nothing changed.
 * It swaps in only a database carrying the mark of the workflow concerned, and undoes only blocks
 * it can prove were a dbops cut-over's.
 */
const config = testConfig();
const base = `t_swap_${uniqueSuffix()}`;
const target = `${base}_db`;

const markAsShadowOf = (db: string, workflowId: string) =>
  sql(
    config,
    undefined,
    `COMMENT ON DATABASE ${quoteIdent(db)} IS '${JSON.stringify({ dbops: 'restore', workflowId, createdAt: new Date().toISOString() })}'`,
  );

const swapInput = (incoming: string, outgoing: string, workflowId: string): SwapInput => ({
  target,
  incoming,
  outgoing,
  workflowId,
  incomingMark: { dbops: 'restore', workflowId },
  keepUntil: '2099-01-01T00:00:00Z',
});

const connectable = async (db: string) =>
  (
    await sql<{ a: boolean }>(
      config,
      undefined,
      'SELECT datallowconn AS a FROM pg_database WHERE datname = $1',
      [db],
    )
  )[0]!.a;

afterAll(async () => {
  await dropDatabasesLike(config, base);
});

describe('swapDatabases', () => {
  it('refuses (NotFound) when the incoming database is gone, leaving the target as it was', async () => {
    await populate(config, target, 100);
    const before = await fingerprint(config, target);
    const dropped = preRestoreDatabaseName(target, new Date(Date.UTC(2026, 0, 1))); // as after db cleanup
    const err = await swapDatabases(config.pg, {
      ...swapInput(dropped, preRestoreDatabaseName(target, new Date(Date.UTC(2026, 0, 2))), 'rollback-1'),
      incomingMark: { dbops: 'pre_restore', workflowId: 'restore-of-a-dropped-copy' },
    }).catch((e: unknown) => e);
    expect(failureTypeOf(err)).toBe('NotFound');
    expect(String((err as Error).message)).toContain(`database ${dropped} does not exist`);
    expect(await fingerprint(config, target)).toEqual(before);
    expect(await databasesLike(config, `${target}__pre_restore_`)).toEqual([]);
  });

  it('refuses a look-alike incoming database that carries no mark of this workflow', async () => {
    const lookAlike = `${base}_lookalike`;
    await populate(config, lookAlike, 10);
    const before = await fingerprint(config, target);
    const outgoing = preRestoreDatabaseName(target, new Date(Date.UTC(2026, 0, 4)));
    const err = await swapDatabases(config.pg, swapInput(lookAlike, outgoing, 'restore-run-0')).catch(
      (e: unknown) => e,
    );
    expect(failureTypeOf(err)).toBe('Refused');
    expect(await fingerprint(config, target)).toEqual(before);
    expect(await connectable(target)).toBe(true);
  });

  it('a retry of a committed swap is done; the same state reached by another run is not', async () => {
    const incoming = `${base}_in`;
    await populate(config, incoming, 50);
    await markAsShadowOf(incoming, 'restore-run-1');
    const swappedIn = await fingerprint(config, incoming);
    const outgoing = preRestoreDatabaseName(target, new Date(Date.UTC(2026, 0, 3)));
    const input = swapInput(incoming, outgoing, 'restore-run-1');
    const first = await swapDatabases(config.pg, input);
    expect(first).toMatchObject({ alreadyDone: false, targetExisted: true });
    expect(await fingerprint(config, target)).toEqual(swappedIn);
    expect(await connectable(target)).toBe(true);
    expect(await connectable(outgoing)).toBe(true);

    const retry = await swapDatabases(config.pg, input);
    expect(retry).toMatchObject({ alreadyDone: true, cutoverMs: 0 });

    const other = await swapDatabases(config.pg, swapInput(incoming, outgoing, 'restore-run-2')).catch(
      (e: unknown) => e,
    );
    expect(failureTypeOf(other)).toBe('NotFound');
    expect(await fingerprint(config, target)).toEqual(swappedIn);
  });

  it("never undoes an operator's own ALLOW_CONNECTIONS false; undoes a dead cut-over's block", async () => {
    const own = `${base}_closed`;
    await populate(config, own, 10);
    await sql(config, undefined, `COMMENT ON DATABASE ${quoteIdent(own)} IS 'closed for maintenance'`);
    await sql(config, undefined, `ALTER DATABASE ${quoteIdent(own)} WITH ALLOW_CONNECTIONS false`);
    await withPg(config.pg, undefined, async (c) => {
      expect(await releaseStaleBlock(c, own)).toBe('not-blocked');
      expect(await connectable(own)).toBe(false);
      // A block whose session is gone (pid 1 at the epoch never ran a backend) is a dead cut-over's.
      const mark = {
        dbops: 'blocked',
        workflowId: 'restore-dead',
        pid: 1,
        backendStart: '2000-01-01 00:00:00+00',
        previousComment: 'closed for maintenance',
      };
      await c.query(`COMMENT ON DATABASE ${quoteIdent(own)} IS '${JSON.stringify(mark)}'`);
      expect(await releaseStaleBlock(c, own)).toBe('released');
    });
    expect(await connectable(own)).toBe(true);
    const [row] = await sql<{ c: string }>(
      config,
      undefined,
      "SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = $1",
      [own],
    );
    expect(row!.c).toBe('closed for maintenance');
    expect(parseMark(row!.c)).toBeUndefined();
  });
});
