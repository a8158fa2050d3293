import {
  ACTION_WEIGHTS,
  ACTIONS,
  ALL_CATEGORIES,
  DEVICES,
  HOUR_WEIGHTS,
  ITEM_TYPES,
  SOURCES,
} from './catalog';
import { CopyWriter, jsonbField, numericField, textField } from './binary';
import { Prng, weightedPicker } from './prng';
import type { TableRows } from './rows';
import type { World } from './world';

const DAY = 86_400_000;
const HOUR = 3_600_000;
export const BEHAVIOR_COLUMNS = [
  'id',
  'user_id',
  'item_id',
  'action',
  'value',
  'context',
  'session_id',
  'device_type',
  'created_at',
] as const;
const CHUNK_BYTES = 1 << 20;
/** id, user, item (3 x 20), action, value, context, session, device, time: well under 400 bytes. */
const MAX_ROW = 400;
export const RATING = ACTIONS.indexOf('rating');

/**
 * Per-item and per-user totals of every behavior generated so far, kept while the behaviors are
 * generated (typed arrays: O(users + items), never O(behaviors)). item_stats and user_profiles
 * are written from them once every behavior has been generated: no SQL pass over the behaviors.
 */
export class BehaviorTotals {
  /** Per item and action (ACTIONS order). */
  readonly itemActions: Uint32Array;
  readonly itemRatingSum: Uint32Array;
  readonly userActions: Uint32Array;
  /** Per user and item type (ITEM_TYPES order), category (ALL_CATEGORIES order), UTC hour. */
  readonly userTypes: Uint32Array;
  readonly userCategories: Uint32Array;
  readonly userHours: Uint32Array;
  /** Unix ms of the user's latest behavior, -1 if none. */
  readonly userLast: Float64Array;

  constructor(users: number, items: number) {
    this.itemActions = new Uint32Array(items * ACTIONS.length);
    this.itemRatingSum = new Uint32Array(items);
    this.userActions = new Uint32Array(users);
    this.userTypes = new Uint32Array(users * ITEM_TYPES.length);
    this.userCategories = new Uint32Array(users * ALL_CATEGORIES.length);
    this.userHours = new Uint32Array(users * 24);
    this.userLast = new Float64Array(users).fill(-1);
  }
}

/** How many behaviors fall on each day of the window (spread evenly, exact total). */
function behaviorsPerDay(w: World): number[] {
  const { plan } = w;
  const days = Math.max(1, Math.floor((plan.nowMs - plan.windowStartMs) / DAY));
  return Array.from(
    { length: days },
    (_, d) => Math.round(((d + 1) * plan.behaviors) / days) - Math.round((d * plan.behaviors) / days),
  );
}

/** The monthly partition user_behaviors_YYYY_MM (ensure_behavior_partitions' naming). */
export function partitionName(monthStartMs: number): string {
  const d = new Date(monthStartMs);
  return `user_behaviors_${d.getUTCFullYear()}_${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

/**
 * The behaviors, one month (one partition) at a time. Each day has its own PRNG stream, so the
 * months can be generated and loaded independently and in any order, with the same result.
 * A session that starts late on a month's last day can run into the next month: those few rows
 * go to spill(), loaded through the parent table once the months are.
 */
export class Behaviors {
  readonly totals: BehaviorTotals;
  readonly months: TableRows[];
  private readonly perDay: number[];
  private readonly spilled: CopyWriter;
  private readonly spilledChunks: { data: Buffer; rows: number }[] = [];
  private spilledRows = 0;

  constructor(private readonly w: World) {
    const { plan } = w;
    this.totals = new BehaviorTotals(plan.users, plan.items);
    this.perDay = behaviorsPerDay(w);
    this.spilled = new CopyWriter(64 * 1024, MAX_ROW);
    const start = new Date(plan.windowStartMs);
    this.months = [];
    for (let m = 0; m < plan.months; m++) {
      const from = Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + m, 1);
      const to = Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + m + 1, 1);
      const days = this.perDay
        .map((_, d) => d)
        .filter((d) => plan.windowStartMs + d * DAY >= from && plan.windowStartMs + d * DAY < to);
      if (days.length) this.months.push(this.month(partitionName(from), days, from, to));
    }
  }

  /** The rows that fell after their month (all generated once every month has been). */
  spill(): TableRows {
    const { spilled, spilledChunks } = this;
    const rows = this.spilledRows;
    return {
      table: 'user_behaviors',
      target: 'user_behaviors',
      columns: BEHAVIOR_COLUMNS,
      total: rows,
      binary: true,
      freeze: false,
      *chunks() {
        yield* spilledChunks;
        yield spilled.take(true);
      },
    };
  }

  private month(partition: string, days: number[], from: number, to: number): TableRows {
    const { w, perDay, totals } = this;
    const { plan } = w;
    const { spilled, spilledChunks } = this;
    const onSpill = () => this.spilledRows++;
    return {
      table: 'user_behaviors',
      target: partition,
      columns: BEHAVIOR_COLUMNS,
      total: days.reduce((sum, d) => sum + perDay[d]!, 0),
      binary: true,
      freeze: true,
      *chunks() {
        // Locals, not module bindings: transpiled imports are property getters, costly per row.
        const { userIdBytes, itemIdBytes, userDevice, userZipf, itemCategory } = w;
        const { itemActions, itemRatingSum, userActions, userTypes, userCategories, userHours, userLast } =
          totals;
        const nActions = ACTIONS.length;
        const nCategories = ALL_CATEGORIES.length;
        const nTypes = ITEM_TYPES.length;
        const categoryType = ALL_CATEGORIES.map((c) => ITEM_TYPES.indexOf(c.type));
        const actionFields = ACTIONS.map(textField);
        const deviceFields = DEVICES.map(textField);
        const nDevices = DEVICES.length;
        const ratingFields = [0, 1, 2, 3, 4, 5].map((v) => numericField(v, 2));
        const sourceCount = SOURCES.length;
        const contexts = SOURCES.flatMap((source) =>
          Array.from({ length: 20 }, (_, position) =>
            jsonbField(`{"source": "${source}", "position": ${position}}`),
          ),
        );
        const action = weightedPicker(ACTION_WEIGHTS);
        const hour = weightedPicker(HOUR_WEIGHTS);
        const nowMs = plan.nowMs;
        const out = new CopyWriter(CHUNK_BYTES, MAX_ROW);
        for (const day of days) {
          const rng = new Prng(plan.seed, 1000 + day);
          const count = perDay[day]!;
          let produced = 0;
          while (produced < count) {
            const u = userZipf.sample(rng);
            const device = rng.next() < 0.8 ? userDevice[u]! : rng.int(nDevices);
            const session = `s_${rng.u32().toString(36)}${rng.u32().toString(36)}`;
            let t = plan.windowStartMs + day * DAY + hour(rng) * HOUR + rng.int(HOUR);
            const events = Math.min(1 + rng.int(8), count - produced);
            for (let e = 0; e < events; e++) {
              if (t >= nowMs) t = nowMs - 1 - rng.int(HOUR);
              const a = action(rng);
              const value = a === RATING ? 1 + rng.int(5) : 0;
              const item = w.pickItem(u, rng);
              const source = rng.int(sourceCount);
              const context = contexts[source * 20 + rng.int(20)]!;
              const dst = t >= from && t < to ? out : spilled;
              if (dst === spilled) onSpill();
              dst.row(9);
              rng.uuidInto(dst.buf, dst.uuidSlot());
              dst.uuid(userIdBytes, u * 16);
              dst.uuid(itemIdBytes, item * 16);
              dst.raw(actionFields[a]!);
              if (value) dst.raw(ratingFields[value]!);
              else dst.nul();
              dst.raw(context);
              dst.ascii(session);
              dst.raw(deviceFields[device]!);
              dst.timestamp(t);
              // The derived tables' totals.
              itemActions[item * nActions + a]!++;
              itemRatingSum[item]! += value;
              userActions[u]!++;
              const cat = itemCategory[item]!;
              userCategories[u * nCategories + cat]!++;
              userTypes[u * nTypes + categoryType[cat]!]!++;
              userHours[u * 24 + Math.floor((t % DAY) / HOUR)]!++;
              if (t > userLast[u]!) userLast[u] = t;
              if (dst === spilled) {
                if (spilled.full()) spilledChunks.push(spilled.take());
              } else if (out.full()) yield out.take();
              t += 5_000 + rng.int(240_000);
            }
            produced += events;
          }
        }
        yield out.take(true);
      },
    };
  }
}
