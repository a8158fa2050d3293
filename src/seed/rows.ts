import {
  ALL_CATEGORIES,
  COUNTRIES,
  DEVICES,
  EMBEDDING_DIM,
  FIRST_NAMES,
  GENDER_WEIGHTS,
  GENDERS,
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
import { CopyWriter, textField } from './binary';
import { Prng, weightedPicker } from './prng';
import { normalize, type World } from './world';

/** One table's (or partition's) rows as COPY data, generated lazily, chunk by chunk. */
export interface TableRows {
  /** The table the rows belong to (progress, counts). */
  readonly table: string;
  /** What COPY writes into: the table, or for behaviors one monthly partition. */
  readonly target: string;
  readonly columns: readonly string[];
  readonly total: number;
  /** COPY's binary format (else text: tab-separated, \N for NULL). */
  readonly binary: boolean;
  /**
   * Nothing references the target: the loading transaction may empty it first (TRUNCATE), so
   * COPY can FREEZE: rows are written frozen and all-visible, and no later scan (index builds,
   * ANALYZE, autovacuum) has to set hint bits on, and so rewrite, every page.
   */
  readonly freeze: boolean;
  readonly chunks: () => Generator<{ readonly data: Buffer | string; readonly rows: number }>;
}

const CHUNK_LINES = 2000;

function text(t: {
  table: string;
  columns: readonly string[];
  total: number;
  lines: () => Generator<string>;
}): TableRows {
  return {
    table: t.table,
    target: t.table,
    columns: t.columns,
    total: t.total,
    binary: false,
    freeze: false,
    *chunks() {
      let buf = '';
      let n = 0;
      for (const line of t.lines()) {
        buf += line;
        if (++n === CHUNK_LINES) {
          yield { data: buf, rows: n };
          buf = '';
          n = 0;
        }
      }
      if (n) yield { data: buf, rows: n };
    },
  };
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
  return text({
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
  });
}

export function itemRows(w: World): TableRows {
  return text({
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
  });
}

const EMBEDDING_COLUMNS = ['item_id', 'embedding', 'model_version'];
/** uuid, vector (4 + 4 x dim), model version, with their length prefixes and the field count. */
const EMBEDDING_ROW = 2 + 4 + 16 + 4 + 4 + 4 * EMBEDDING_DIM + 4 + MODEL_VERSION.length;

/**
 * A unit vector near center, as float4 (what the vector column stores). scratch: dim doubles.
 */
function embeddingInto(
  out: Float32Array,
  scratch: Float64Array,
  center: Float64Array,
  rng: Prng,
  noise: number,
): Float32Array {
  const scale = noise / Math.sqrt(EMBEDDING_DIM);
  // Box-Muller, both of its normal deviates (the logarithm and square root are the cost).
  for (let d = 0; d < EMBEDDING_DIM; d += 2) {
    const r = scale * Math.sqrt(-2 * Math.log(1 - rng.next()));
    const theta = 2 * Math.PI * rng.next();
    scratch[d] = center[d]! + r * Math.cos(theta);
    scratch[d + 1] = center[d + 1]! + r * Math.sin(theta);
  }
  normalize(scratch);
  out.set(scratch);
  return out;
}

/** Unit vectors around their category's centroid: nearest neighbours share a category. */
export function* itemEmbeddings(w: World): Generator<Float32Array> {
  const rng = new Prng(w.plan.seed, 13);
  const out = new Float32Array(EMBEDDING_DIM);
  const scratch = new Float64Array(EMBEDDING_DIM);
  for (let i = 0; i < w.plan.items; i++)
    yield embeddingInto(out, scratch, w.centroids[w.itemCategory[i]!]!, rng, 0.6);
}

/**
 * User u's vector (yielded in user order, one reused array): near the mean of their favourite
 * categories' centroids. Also user_profiles.profile_vector, so generated twice rather than kept.
 */
export function* userEmbeddings(w: World): Generator<Float32Array> {
  const rng = new Prng(w.plan.seed, 14);
  const mean = new Float64Array(EMBEDDING_DIM);
  const out = new Float32Array(EMBEDDING_DIM);
  const scratch = new Float64Array(EMBEDDING_DIM);
  for (let u = 0; u < w.plan.users; u++) {
    mean.fill(0);
    for (const c of w.favourites(u)) for (let d = 0; d < EMBEDDING_DIM; d++) mean[d]! += w.centroids[c]![d]!;
    yield embeddingInto(out, scratch, normalize(mean), rng, 0.8);
  }
}

function embeddingRows(
  table: string,
  idColumn: string,
  total: number,
  ids: Uint8Array,
  vectors: () => Generator<Float32Array>,
): TableRows {
  return {
    table,
    target: table,
    columns: [idColumn, ...EMBEDDING_COLUMNS.slice(1)],
    total,
    binary: true,
    freeze: true,
    *chunks() {
      const out = new CopyWriter(1 << 20, EMBEDDING_ROW);
      const model = textField(MODEL_VERSION);
      let n = 0;
      for (const v of vectors()) {
        out.row(3);
        out.uuid(ids, n++ * 16);
        out.vector(v);
        out.raw(model);
        if (out.full()) yield out.take();
      }
      yield out.take(true);
    },
  };
}

export const itemEmbeddingRows = (w: World): TableRows =>
  embeddingRows('item_embeddings', 'item_id', w.plan.items, w.itemIdBytes, () => itemEmbeddings(w));
export const userEmbeddingRows = (w: World): TableRows =>
  embeddingRows('user_embeddings', 'user_id', w.plan.users, w.userIdBytes, () => userEmbeddings(w));

function listId(w: World, l: number): string {
  return new Prng(w.plan.seed ^ l, 15).uuid();
}

/** One list per chosen user; half of them already expired (for cleanup). */
export function recommendationListRows(w: World): TableRows {
  return text({
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
  });
}

export function recommendationItemRows(w: World): TableRows {
  return text({
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
  });
}

/** The first 5 entries of every other list were shown. */
export function impressionRows(w: World): TableRows {
  const lists = Math.ceil(w.plan.recommendationLists / 2);
  return text({
    table: 'recommendation_impressions',
    columns: ['list_id', 'rank', 'shown_at'],
    total: lists * 5,
    *lines() {
      for (let l = 0; l < w.plan.recommendationLists; l += 2) {
        for (let rank = 1; rank <= 5; rank++)
          yield `${listId(w, l)}\t${rank}\t${iso(w.plan.nowMs - rank * 1000)}\n`;
      }
    },
  });
}

function cap(s: string): string {
  return s[0]!.toUpperCase() + s.slice(1);
}
