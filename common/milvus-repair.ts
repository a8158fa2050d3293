/**
 * The safety rule of a Milvus repair (`dbops milvus check --fix`), pure so that the workflow decides
 * with it and the CLI's check shows the same decision before anything runs.
 *
 * An "orphan" is a vector whose id is absent from PostgreSQL. Pointed at an empty or wrong database,
 * every vector looks orphaned: a repair deletes at most a bounded share of the collection unless
 * the operator typed the exact number of orphans the check found.
 */

/** Share of a collection's entities one repair may delete without `--confirm-delete`. */
export const DEFAULT_MAX_DELETE_SHARE = 0.1;

export interface DeleteRequest {
  readonly collection: string;
  /** PostgreSQL database the ids were compared with. */
  readonly database: string;
  /** Orphans the check found. */
  readonly orphans: number;
  /** Entities in the collection when checked (a Strong count). */
  readonly entities: number;
  readonly maxDeleteShare: number;
  /** The typed confirmation: must equal `orphans`. */
  readonly confirmDelete?: number;
}

export type DeleteDecision =
  | {
      readonly allowed: true;
      /** The repair activity refuses when it finds more orphans than this (data changed since the check). */
      readonly maxDeletes: number;
      readonly confirmed: boolean;
    }
  /** `reason` completes "refused: …" (the workflow's failure) and "--fix would be refused: …" (the check). */
  | { readonly allowed: false; readonly reason: string };

/** `12.5%`: a share for people. */
export function percent(part: number, whole: number): string {
  return whole === 0 ? '0%' : `${Number(((100 * part) / whole).toFixed(1))}%`;
}

/**
 * Why `value` is not a share of a collection (undefined when it is one), to follow the option's
 * name and value. 0 allows no deletion without confirmation.
 */
export function maxDeleteShareProblem(value: number): string | undefined {
  return Number.isFinite(value) && value >= 0 && value <= 1
    ? undefined
    : "must be a fraction from 0 to 1 (0.1 = 10% of the collection's entities)";
}

/** Why `value` is not an orphan count (undefined when it is one), to follow the option's name and value. */
export function confirmDeleteProblem(value: number): string | undefined {
  return Number.isSafeInteger(value) && value >= 0
    ? undefined
    : 'must be the number of orphans the check found (an integer >= 0)';
}

/** May the repair delete `orphans` vectors, and how many at most when it runs? */
export function deleteDecision(r: DeleteRequest): DeleteDecision {
  if (r.confirmDelete !== undefined) {
    if (r.confirmDelete === r.orphans) return { allowed: true, maxDeletes: r.orphans, confirmed: true };
    return {
      allowed: false,
      reason:
        `--confirm-delete ${r.confirmDelete} does not match the ${r.orphans} orphans found in Milvus collection ` +
        `${r.collection} (ids absent from PostgreSQL database ${r.database}): check again and confirm the ` +
        `number found`,
    };
  }
  const cap = Math.floor(r.maxDeleteShare * r.entities);
  if (r.orphans <= cap) return { allowed: true, maxDeletes: cap, confirmed: false };
  return {
    allowed: false,
    reason:
      `${r.orphans} of the ${r.entities} entities in Milvus collection ${r.collection} ` +
      `(${percent(r.orphans, r.entities)}) would be deleted: their ids are absent from PostgreSQL database ` +
      `${r.database}, more than the ${percent(r.maxDeleteShare, 1)} cap (--max-delete-share ` +
      `${r.maxDeleteShare}). Is ${r.database} the right database? To delete them anyway, pass ` +
      `--confirm-delete ${r.orphans}`,
  };
}
