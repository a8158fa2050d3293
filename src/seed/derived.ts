/**
 * item_stats and user_profiles, written from the totals the behavior generator kept
 * (BehaviorTotals), so they agree exactly with the behaviors without an SQL pass over them.
 * Their definitions (what the seed test checks against the loaded behaviors):
 * - item_stats: per item, the count of each of view/click/like/share/rating behaviors, and
 *   avg_rating = round(avg(value) of its ratings, 2), 0 without ratings. Every item has a row.
 * - user_profiles: per user, total_actions; preferred_types {type: behaviors on items of that
 *   type}; preferred_categories: the 5 categories with the most behaviors (ties by name)
 *   {category: behaviors}; active_hours {UTC hour: behaviors}; last_active the latest
 *   behavior's time (NULL without behaviors); profile_vector = vector_send(the user's embedding)
 *   (1028 bytes for dim 256). Every user has a row; keys with no behaviors are left out.
 */
import type { BehaviorTotals } from './behaviors';
import { CopyWriter } from './binary';
import { ACTIONS, ALL_CATEGORIES, EMBEDDING_DIM, ITEM_TYPES } from './catalog';
import { userEmbeddings, type TableRows } from './rows';
import type { World } from './world';

const PAD2 = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const A = Object.fromEntries(ACTIONS.map((a, i) => [a, i])) as Record<(typeof ACTIONS)[number], number>;

/** round(sum / n, 2) as numeric text, half away from zero (numeric's round), exactly. */
export function roundedAverage(sum: number, n: number): string {
  if (n === 0) return '0';
  const hundredths = Math.floor((200 * sum + n) / (2 * n));
  return `${Math.floor(hundredths / 100)}.${PAD2[hundredths % 100]}`;
}

export function itemStatsRows(w: World, totals: BehaviorTotals): TableRows {
  const columns = [
    'item_id',
    'view_count',
    'click_count',
    'like_count',
    'share_count',
    'avg_rating',
    'rating_count',
  ];
  return {
    table: 'item_stats',
    target: 'item_stats',
    columns,
    total: w.plan.items,
    binary: false,
    freeze: true,
    *chunks() {
      const { itemActions: c, itemRatingSum } = totals;
      const k = ACTIONS.length;
      let buf = '';
      let rows = 0;
      for (let i = 0; i < w.plan.items; i++) {
        const o = i * k;
        const ratings = c[o + A.rating]!;
        buf += `${w.itemIds[i]}\t${c[o + A.view]}\t${c[o + A.click]}\t${c[o + A.like]}\t${c[o + A.share]}\t${roundedAverage(itemRatingSum[i]!, ratings)}\t${ratings}\n`;
        if (++rows === 2000) {
          yield { data: buf, rows };
          buf = '';
          rows = 0;
        }
      }
      if (rows) yield { data: buf, rows };
    },
  };
}

const TYPE_KEYS = ITEM_TYPES.map((t) => `"${t}": `);
const CATEGORY_KEYS = ALL_CATEGORIES.map((c) => `"${c.name}": `);
const CATEGORY_NAMES = ALL_CATEGORIES.map((c) => c.name);
const HOUR_KEYS = Array.from({ length: 24 }, (_, h) => `"${h}": `);
/** The profile's byte bound: uuid, int8, 3 small JSON objects, timestamptz, vector. */
const PROFILE_ROW = 2 + 7 * 4 + 16 + 8 + 1200 + 8 + 4 + 4 * EMBEDDING_DIM;

/** {key: n} for every n > 0 among counts[from, from + keys.length). */
function jsonCounts(counts: Uint32Array, from: number, keys: readonly string[]): string {
  let s = '';
  for (let k = 0; k < keys.length; k++) {
    const n = counts[from + k]!;
    if (n) s += `${s ? ', ' : ''}${keys[k]}${n}`;
  }
  return `{${s}}`;
}

export function userProfileRows(w: World, totals: BehaviorTotals): TableRows {
  return {
    table: 'user_profiles',
    target: 'user_profiles',
    columns: [
      'user_id',
      'total_actions',
      'preferred_types',
      'preferred_categories',
      'active_hours',
      'last_active',
      'profile_vector',
    ],
    total: w.plan.users,
    binary: true,
    freeze: true,
    *chunks() {
      const { userActions, userTypes, userCategories, userHours, userLast } = totals;
      const nTypes = ITEM_TYPES.length;
      const nCats = ALL_CATEGORIES.length;
      const order = Array.from({ length: nCats }, (_, c) => c);
      const out = new CopyWriter(1 << 20, PROFILE_ROW);
      let u = 0;
      for (const vector of userEmbeddings(w)) {
        const co = u * nCats;
        // Most behaviors first, then by name (the C collation's byte order).
        order.sort(
          (a, b) =>
            userCategories[co + b]! - userCategories[co + a]! ||
            (CATEGORY_NAMES[a]! < CATEGORY_NAMES[b]! ? -1 : 1),
        );
        let top = '';
        for (let r = 0; r < 5; r++) {
          const c = order[r]!;
          const n = userCategories[co + c]!;
          if (n) top += `${top ? ', ' : ''}${CATEGORY_KEYS[c]}${n}`;
        }
        out.row(7);
        out.uuid(w.userIdBytes, u * 16);
        out.int8(userActions[u]!);
        out.asciiJsonb(jsonCounts(userTypes, u * nTypes, TYPE_KEYS));
        out.asciiJsonb(`{${top}}`);
        out.asciiJsonb(jsonCounts(userHours, u * 24, HOUR_KEYS));
        if (userLast[u]! >= 0) out.timestamp(userLast[u]!);
        else out.nul();
        out.vector(vector);
        u++;
        if (out.full()) yield out.take();
      }
      yield out.take(true);
    },
  };
}
