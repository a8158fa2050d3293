import { Prng, uuidText, weightedPicker, Zipf } from './prng';
import {
  ALL_CATEGORIES,
  DEVICE_WEIGHTS,
  EMBEDDING_DIM,
  ITEM_TYPES,
  CATEGORIES,
  TYPE_WEIGHTS,
} from './catalog';

export interface SeedPlan {
  readonly seed: number;
  readonly scale: number;
  readonly months: number;
  readonly users: number;
  readonly items: number;
  readonly behaviors: number;
  readonly recommendationLists: number;
  readonly itemsPerList: number;
  /** Behaviors fall in [windowStart, now). windowStart is a UTC month start. */
  readonly windowStartMs: number;
  readonly nowMs: number;
}

export function planSeed(input: { scale: number; seed: number; months: number; now?: Date }): SeedPlan {
  const now = input.now ?? new Date();
  const windowStartMs = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - (input.months - 1), 1);
  const users = Math.max(10, Math.round(100_000 * input.scale));
  return {
    seed: input.seed,
    scale: input.scale,
    months: input.months,
    users,
    items: Math.max(20, Math.round(50_000 * input.scale)),
    behaviors: Math.max(100, Math.round(5_000_000 * input.scale)),
    recommendationLists: Math.max(1, Math.round(users * 0.2)),
    itemsPerList: 20,
    windowStartMs,
    nowMs: now.getTime(),
  };
}

/**
 * The small, in-memory part of the world every table refers to: ids, item types/categories,
 * each user's favourite categories and device, category centroids. Behaviors are streamed.
 */
export class World {
  readonly userIds: string[];
  readonly itemIds: string[];
  /** The same ids, 16 bytes each (binary COPY). */
  readonly userIdBytes: Uint8Array;
  readonly itemIdBytes: Uint8Array;
  readonly itemCategory: Uint8Array;
  /** Up to 3 favourite category ids per user (255 = none). */
  readonly userFavs: Uint8Array;
  readonly userDevice: Uint8Array;
  readonly categoryItems: number[][];
  readonly categoryZipf: Zipf[];
  readonly globalZipf: Zipf;
  readonly userZipf: Zipf;
  readonly centroids: Float64Array[];

  constructor(readonly plan: SeedPlan) {
    const ids = new Prng(plan.seed, 1);
    this.userIdBytes = new Uint8Array(plan.users * 16);
    this.itemIdBytes = new Uint8Array(plan.items * 16);
    for (let u = 0; u < plan.users; u++) ids.uuidInto(this.userIdBytes, u * 16);
    for (let i = 0; i < plan.items; i++) ids.uuidInto(this.itemIdBytes, i * 16);
    this.userIds = Array.from({ length: plan.users }, (_, u) => uuidText(this.userIdBytes, u * 16));
    this.itemIds = Array.from({ length: plan.items }, (_, i) => uuidText(this.itemIdBytes, i * 16));

    const rng = new Prng(plan.seed, 2);
    const pickType = weightedPicker(TYPE_WEIGHTS);
    this.itemCategory = new Uint8Array(plan.items);
    this.categoryItems = ALL_CATEGORIES.map(() => []);
    for (let i = 0; i < plan.items; i++) {
      const type = ITEM_TYPES[pickType(rng)]!;
      const name = rng.pick(CATEGORIES[type]);
      const cat = ALL_CATEGORIES.findIndex((c) => c.type === type && c.name === name);
      this.itemCategory[i] = cat;
      this.categoryItems[cat]!.push(i); // item index order = global popularity order
    }
    this.categoryZipf = this.categoryItems.map((list) => new Zipf(Math.max(1, list.length), 1.0));
    this.globalZipf = new Zipf(plan.items, 1.0);
    this.userZipf = new Zipf(plan.users, 0.6);

    const pickDevice = weightedPicker(DEVICE_WEIGHTS);
    this.userFavs = new Uint8Array(plan.users * 3).fill(255);
    this.userDevice = new Uint8Array(plan.users);
    for (let u = 0; u < plan.users; u++) {
      const n = 1 + rng.int(3);
      for (let k = 0; k < n; k++) {
        let cat = rng.int(ALL_CATEGORIES.length);
        while (this.categoryItems[cat]!.length === 0) cat = (cat + 1) % ALL_CATEGORIES.length;
        this.userFavs[u * 3 + k] = cat;
      }
      this.userDevice[u] = pickDevice(rng);
    }

    const crng = new Prng(plan.seed, 3);
    this.centroids = ALL_CATEGORIES.map(() =>
      normalize(Float64Array.from({ length: EMBEDDING_DIM }, () => crng.gaussian())),
    );
  }

  favourites(u: number): number[] {
    const out: number[] = [];
    for (let k = 0; k < 3; k++) {
      const c = this.userFavs[u * 3 + k]!;
      if (c !== 255) out.push(c);
    }
    return out;
  }

  /** An item for user u: mostly from a favourite category (long tail within it), else the global long tail. */
  pickItem(u: number, rng: Prng): number {
    if (rng.next() < 0.65) {
      // favourites(u)[rng.int(its length)], without an array per call (they come first).
      const f = this.userFavs;
      const o = u * 3;
      const n = f[o + 1] === 255 ? 1 : f[o + 2] === 255 ? 2 : 3;
      const cat = f[o + rng.int(n)]!;
      const list = this.categoryItems[cat]!;
      return list[this.categoryZipf[cat]!.sample(rng)]!;
    }
    return this.globalZipf.sample(rng);
  }
}

export function normalize(v: Float64Array): Float64Array {
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n) || 1;
  for (let i = 0; i < v.length; i++) v[i]! /= n;
  return v;
}
