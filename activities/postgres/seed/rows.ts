import {
  ACTION_WEIGHTS,
  ACTIONS,
  ALL_CATEGORIES,
  COUNTRIES,
  DEVICES,
  EMBEDDING_DIM,
  FIRST_NAMES,
  GENDER_WEIGHTS,
  GENDERS,
  HOUR_WEIGHTS,
  ITEM_STATUS_WEIGHTS,
  ITEM_STATUSES,
  LAST_NAMES,
  MODEL_VERSION,
  SOURCES,
  STRATEGIES,
  STRATEGY_WEIGHTS,
  TAGS,
  USER_STATUS_WEIGHTS,
  USER_STATUSES,
  WORDS,
} from './catalog';
import { Prng, weightedPicker } from './prng';
import { normalize, vectorText, type World } from './world';

/** COPY text-format lines (tab-separated, \N for NULL) for each table, generated lazily. */
export interface TableRows {
  readonly table: string;
  readonly columns: readonly string[];
  readonly total: number;
  readonly lines: () => Generator<string>;
}

const DAY = 86_400_000;
const PAD2 = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));
const PAD3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
const dayPrefix = new Map<number, string>();
/** toISOString, fast: the date part is cached per day. */
function iso(ms: number): string {
  const day = Math.floor(ms / DAY);
  let prefix = dayPrefix.get(day);
  if (prefix === undefined) {
    prefix = new Date(day * DAY).toISOString().slice(0, 11);
    dayPrefix.set(day, prefix);
  }
  let rest = ms - day * DAY;
  const milli = rest % 1000;
  rest = (rest - milli) / 1000;
  const sec = rest % 60;
  rest = (rest - sec) / 60;
  return `${prefix}${PAD2[Math.floor(rest / 60)]}:${PAD2[rest % 60]}:${PAD2[sec]}.${PAD3[milli]}Z`;
}
const N = '\\N';

export function userRows(w: World): TableRows {
  return {
    table: 'users',
    columns: [
      'id',
      'name',
      'email',
      'password_hash',
      'age',
      'gender',
      'metadata',
      'status',
      'created_at',
      'updated_at',
    ],
    total: w.plan.users,
    *lines() {
      const rng = new Prng(w.plan.seed, 10);
      const gender = weightedPicker(GENDER_WEIGHTS);
      const status = weightedPicker(USER_STATUS_WEIGHTS);
      for (let u = 0; u < w.plan.users; u++) {
        const name = `${rng.pick(FIRST_NAMES)} ${rng.pick(LAST_NAMES)}`;
        const age =
          rng.next() < 0.07 ? N : String(16 + Math.min(70, Math.floor(Math.abs(rng.gaussian()) * 18)));
        const g = GENDERS[gender(rng)];
        const created = w.plan.windowStartMs - rng.int(365) * DAY - rng.int(DAY);
        const meta = `{"country": "${rng.pick(COUNTRIES)}", "signup_source": "${rng.pick(SOURCES)}"}`;
        yield `${w.userIds[u]}\t${name}\tuser${u}@example.com\t$2b$10$seed${rng.u32().toString(36).padStart(7, '0')}${'x'.repeat(42)}\t${age}\t${g ?? N}\t${meta}\t${USER_STATUSES[status(rng)]}\t${iso(created)}\t${iso(created)}\n`;
      }
    },
  };
}

export function itemRows(w: World): TableRows {
  return {
    table: 'items',
    columns: [
      'id',
      'type',
      'title',
      'description',
      'category',
      'tags',
      'metadata',
      'status',
      'created_at',
      'updated_at',
    ],
    total: w.plan.items,
    *lines() {
      const rng = new Prng(w.plan.seed, 11);
      const status = weightedPicker(ITEM_STATUS_WEIGHTS);
      for (let i = 0; i < w.plan.items; i++) {
        const cat = ALL_CATEGORIES[w.itemCategory[i]!]!;
        const title = `${cap(rng.pick(WORDS))} ${rng.pick(WORDS)} ${rng.pick(WORDS)} ${i}`;
        const description = `A ${rng.pick(WORDS)} ${cat.type} about ${rng.pick(WORDS)} ${rng.pick(WORDS)} and ${rng.pick(WORDS)} ${cat.name.replace('_', ' ')}.`;
        const tags = `{${cat.name},${rng.pick(TAGS)},${rng.pick(TAGS)}}`;
        const meta =
          cat.type === 'product'
            ? `{"price": ${(1 + rng.next() * 300).toFixed(2)}, "currency": "USD"}`
            : `{"duration_s": ${60 + rng.int(7200)}, "language": "${rng.pick(['en', 'de', 'zh', 'es'])}"}`;
        const created = w.plan.windowStartMs - rng.int(730) * DAY - rng.int(DAY);
        yield `${w.itemIds[i]}\t${cat.type}\t${title}\t${description}\t${cat.name}\t${tags}\t${meta}\t${ITEM_STATUSES[status(rng)]}\t${iso(created)}\t${iso(created)}\n`;
      }
    },
  };
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

/**
 * Sessions of 1-8 events by one user on one device, long-tail items, a daily rhythm. Each day has
 * its own PRNG stream, so `part` of `parts` (the days with day % parts === part) can be generated
 * and loaded independently and in parallel, with the same result.
 */
export function behaviorRows(w: World, part = 0, parts = 1): TableRows {
  const { plan } = w;
  const perDay = behaviorsPerDay(w);
  const myDays = perDay.map((_, d) => d).filter((d) => d % parts === part);
  return {
    table: 'user_behaviors',
    columns: [
      'id',
      'user_id',
      'item_id',
      'action',
      'value',
      'context',
      'session_id',
      'device_type',
      'created_at',
    ],
    total: myDays.reduce((sum, d) => sum + perDay[d]!, 0),
    *lines() {
      // Locals, not module bindings: transpiled imports are property getters, costly per row.
      const { userIds, itemIds, userDevice, userZipf } = w;
      const actions = ACTIONS;
      const devices = DEVICES;
      const sourceCount = SOURCES.length;
      const contexts = SOURCES.flatMap((source) =>
        Array.from({ length: 20 }, (_, position) => `{"source": "${source}", "position": ${position}}`),
      );
      const action = weightedPicker(ACTION_WEIGHTS);
      const hour = weightedPicker(HOUR_WEIGHTS);
      // Day by day in time order: each monthly partition (and its indexes) is filled in turn.
      for (const day of myDays) {
        const rng = new Prng(plan.seed, 1000 + day);
        const count = perDay[day]!;
        let produced = 0;
        while (produced < count) {
          const u = userZipf.sample(rng);
          const device = rng.next() < 0.8 ? devices[userDevice[u]!] : devices[rng.int(devices.length)];
          const session = `s_${rng.u32().toString(36)}${rng.u32().toString(36)}`;
          let t = plan.windowStartMs + day * DAY + hour(rng) * 3_600_000 + rng.int(3_600_000);
          const events = Math.min(1 + rng.int(8), count - produced);
          const prefix = `\t${userIds[u]}\t`;
          for (let e = 0; e < events; e++) {
            if (t >= plan.nowMs) t = plan.nowMs - 1 - rng.int(3_600_000);
            const a = actions[action(rng)]!;
            const value = a === 'rating' ? String(1 + rng.int(5)) : N;
            const item = itemIds[w.pickItem(u, rng)];
            const source = rng.int(sourceCount);
            const context = contexts[source * 20 + rng.int(20)];
            yield `${rng.uuid()}${prefix}${item}\t${a}\t${value}\t${context}\t${session}\t${device}\t${iso(t)}\n`;
            t += 5_000 + rng.int(240_000);
          }
          produced += events;
        }
      }
    },
  };
}

function embedding(center: Float64Array, rng: Prng, noise: number): Float64Array {
  const v = new Float64Array(EMBEDDING_DIM);
  for (let d = 0; d < EMBEDDING_DIM; d++)
    v[d] = center[d]! + (noise * rng.gaussian()) / Math.sqrt(EMBEDDING_DIM);
  return normalize(v);
}

/** Unit vectors around their category's centroid: nearest neighbours share a category. */
export function itemEmbeddingRows(w: World): TableRows {
  return {
    table: 'item_embeddings',
    columns: ['item_id', 'embedding', 'model_version'],
    total: w.plan.items,
    *lines() {
      const rng = new Prng(w.plan.seed, 13);
      for (let i = 0; i < w.plan.items; i++) {
        const v = embedding(w.centroids[w.itemCategory[i]!]!, rng, 0.6);
        yield `${w.itemIds[i]}\t${vectorText(v)}\t${MODEL_VERSION}\n`;
      }
    },
  };
}

/** A user's vector: near the mean of their favourite categories' centroids. */
export function userEmbeddingRows(w: World): TableRows {
  return {
    table: 'user_embeddings',
    columns: ['user_id', 'embedding', 'model_version'],
    total: w.plan.users,
    *lines() {
      const rng = new Prng(w.plan.seed, 14);
      const mean = new Float64Array(EMBEDDING_DIM);
      for (let u = 0; u < w.plan.users; u++) {
        mean.fill(0);
        for (const c of w.favourites(u))
          for (let d = 0; d < EMBEDDING_DIM; d++) mean[d]! += w.centroids[c]![d]!;
        yield `${w.userIds[u]}\t${vectorText(embedding(normalize(mean), rng, 0.8))}\t${MODEL_VERSION}\n`;
      }
    },
  };
}

function listId(w: World, l: number): string {
  return new Prng(w.plan.seed ^ l, 15).uuid();
}

/** One list per chosen user; half of them already expired (for cleanup). */
export function recommendationListRows(w: World): TableRows {
  return {
    table: 'recommendation_lists',
    columns: [
      'id',
      'user_id',
      'model_name',
      'model_version',
      'strategy',
      'request_context',
      'item_count',
      'created_at',
      'expires_at',
    ],
    total: w.plan.recommendationLists,
    *lines() {
      const rng = new Prng(w.plan.seed, 16);
      const strategy = weightedPicker(STRATEGY_WEIGHTS);
      for (let l = 0; l < w.plan.recommendationLists; l++) {
        const u = Math.floor((l * w.plan.users) / w.plan.recommendationLists);
        const created = w.plan.nowMs - rng.int(2 * DAY);
        const expires = created + DAY;
        const ctx = `{"surface": "${rng.pick(['home_feed', 'item_page', 'email'])}", "device": "${DEVICES[w.userDevice[u]!]}"}`;
        yield `${listId(w, l)}\t${w.userIds[u]}\tgr-hstu\tv1.${rng.int(4)}\t${STRATEGIES[strategy(rng)]}\t${ctx}\t${w.plan.itemsPerList}\t${iso(created)}\t${iso(expires)}\n`;
      }
    },
  };
}

export function recommendationItemRows(w: World): TableRows {
  return {
    table: 'recommendation_items',
    columns: ['list_id', 'rank', 'item_id', 'score', 'explanation'],
    total: w.plan.recommendationLists * w.plan.itemsPerList,
    *lines() {
      const rng = new Prng(w.plan.seed, 17);
      for (let l = 0; l < w.plan.recommendationLists; l++) {
        const u = Math.floor((l * w.plan.users) / w.plan.recommendationLists);
        const id = listId(w, l);
        const seen = new Set<number>();
        let score = 0.99;
        for (let rank = 1; rank <= w.plan.itemsPerList; rank++) {
          let item = w.pickItem(u, rng);
          for (let tries = 0; seen.has(item) && tries < 20; tries++) item = w.pickItem(u, rng);
          seen.add(item);
          score -= rng.next() * 0.04;
          const cat = ALL_CATEGORIES[w.itemCategory[item]!]!;
          yield `${id}\t${rank}\t${w.itemIds[item]}\t${score.toFixed(4)}\tbecause you like ${cat.name.replace('_', ' ')} ${cat.type}s\n`;
        }
      }
    },
  };
}

/** The first 5 entries of every other list were shown. */
export function impressionRows(w: World): TableRows {
  const lists = Math.ceil(w.plan.recommendationLists / 2);
  return {
    table: 'recommendation_impressions',
    columns: ['list_id', 'rank', 'shown_at'],
    total: lists * 5,
    *lines() {
      for (let l = 0; l < w.plan.recommendationLists; l += 2) {
        for (let rank = 1; rank <= 5; rank++)
          yield `${listId(w, l)}\t${rank}\t${iso(w.plan.nowMs - rank * 1000)}\n`;
      }
    },
  };
}

function cap(s: string): string {
  return s[0]!.toUpperCase() + s.slice(1);
}
