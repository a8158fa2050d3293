import { afterAll, describe, expect, it } from 'vitest';
import { failureTypeOf } from '../../common/failures';
import { preRestoreDatabaseName } from '../../common/restore';
import { swapDatabases } from '../../activities/postgres/restore/databases';
import { testConfig, uniqueSuffix } from '../helpers/stack';
import { databasesLike, dropDatabasesLike, fingerprint, populate } from './restore-fixtures';

/**
 * The cut-over reports "already done" only when its own swap made the current state, never because
 * the database it should swap in has vanished (a kept pre-restore copy or a shadow dropped by
 * `db cleanup`): that used to make `dbops restore rollback` print success while nothing changed.
 */
const config = testConfig();
const base = `t_swap_${uniqueSuffix()}`;
const target = `${base}_db`;
const comment = (workflowId: string) => ({
  dbops: 'pre_restore' as const,
  target,
  workflowId,
  keepUntil: '2099-01-01T00:00:00Z',
});

afterAll(async () => {
  await dropDatabasesLike(config, base);
});

describe('swapDatabases', () => {
  it('refuses (NotFound) when the incoming database is gone, leaving the target as it was', async () => {
    await populate(config, target, 100);
    const before = await fingerprint(config, target);
    const dropped = preRestoreDatabaseName(target, new Date(Date.UTC(2026, 0, 1))); // as after db cleanup
    const err = await swapDatabases(config.pg, {
      target,
      incoming: dropped,
      outgoing: preRestoreDatabaseName(target, new Date(Date.UTC(2026, 0, 2))),
      comment: comment('rollback-of-a-dropped-copy'),
    }).catch((e: unknown) => e);
    expect(failureTypeOf(err)).toBe('NotFound');
    expect(String((err as Error).message)).toContain(`database ${dropped} does not exist`);
    expect(await fingerprint(config, target)).toEqual(before);
    expect(await databasesLike(config, `${target}__pre_restore_`)).toEqual([]);
  });

  it('a retry of a committed swap is done; the same state reached by another run is not', async () => {
    const incoming = `${base}_in`;
    await populate(config, incoming, 50);
    const swappedIn = await fingerprint(config, incoming);
    const outgoing = preRestoreDatabaseName(target, new Date(Date.UTC(2026, 0, 3)));
    const input = { target, incoming, outgoing, comment: comment('restore-run-1') };
    const first = await swapDatabases(config.pg, input);
    expect(first).toMatchObject({ alreadyDone: false, targetExisted: true });
    expect(await fingerprint(config, target)).toEqual(swappedIn);

    const retry = await swapDatabases(config.pg, input);
    expect(retry).toMatchObject({ alreadyDone: true, cutoverMs: 0 });

    const other = await swapDatabases(config.pg, { ...input, comment: comment('restore-run-2') }).catch(
      (e: unknown) => e,
    );
    expect(failureTypeOf(other)).toBe('NotFound');
    expect(await fingerprint(config, target)).toEqual(swappedIn);
  });
});
