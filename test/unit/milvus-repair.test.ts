import { describe, expect, it } from 'vitest';
import {
  confirmDeleteProblem,
  deleteDecision,
  maxDeleteShareProblem,
  percent,
} from '../../common/milvus-repair';

/** The one deletion rule of `dbops milvus check --fix`; test/drills/milvus-repair.test.ts runs it for real. */
describe('milvus repair deletion rule', () => {
  const base = { collection: 'item_embeddings', database: 'recsys', entities: 1000, maxDeleteShare: 0.1 };

  it('allows up to the cap, refuses one more, naming the count, the share and the override', () => {
    expect(deleteDecision({ ...base, orphans: 100 })).toEqual({
      allowed: true,
      maxDeletes: 100,
      confirmed: false,
    });
    const refused = deleteDecision({ ...base, orphans: 101 });
    expect(refused.allowed).toBe(false);
    if (refused.allowed) return;
    for (const part of [
      '101 of the 1000 entities in Milvus collection item_embeddings (10.1%)',
      'PostgreSQL database recsys',
      'the 10% cap (--max-delete-share 0.1)',
      '--confirm-delete 101',
    ])
      expect(refused.reason).toContain(part);
  });

  it('a typed confirmation must equal the orphans found, above or below the cap', () => {
    expect(deleteDecision({ ...base, orphans: 1000, confirmDelete: 1000 })).toEqual({
      allowed: true,
      maxDeletes: 1000,
      confirmed: true,
    });
    for (const [orphans, confirmDelete] of [
      [1000, 999],
      [5, 6],
    ] as const) {
      const d = deleteDecision({ ...base, orphans, confirmDelete });
      expect(d.allowed).toBe(false);
      if (!d.allowed)
        expect(d.reason).toContain(`--confirm-delete ${confirmDelete} does not match the ${orphans}`);
    }
  });

  it('share 0 deletes nothing unconfirmed; an empty collection has nothing to refuse', () => {
    expect(deleteDecision({ ...base, maxDeleteShare: 0, orphans: 1 }).allowed).toBe(false);
    expect(deleteDecision({ ...base, maxDeleteShare: 0, orphans: 0 }).allowed).toBe(true);
    expect(deleteDecision({ ...base, entities: 0, orphans: 0 }).allowed).toBe(true);
    expect(percent(0, 0)).toBe('0%');
    expect(percent(5, 205)).toBe('2.4%');
  });

  it('validates the options', () => {
    for (const ok of [0, 0.1, 1]) expect(maxDeleteShareProblem(ok)).toBeUndefined();
    for (const bad of [-0.1, 1.5, NaN, Infinity])
      expect(maxDeleteShareProblem(bad)).toMatch(/fraction from 0 to 1/);
    expect(confirmDeleteProblem(0)).toBeUndefined();
    for (const bad of [-1, 1.5, NaN]) expect(confirmDeleteProblem(bad)).toMatch(/number of orphans/);
  });
});
