/**
 * Index advice from a collection's size. Pure functions (no I/O) so they are unit-tested and the
 * table below is the documentation.
 *
 * IVF_FLAT: Milvus builds one IVF index per sealed segment, so nlist follows the rows per segment,
 * not the collection size: nlist ≈ 4·√(rows per segment), clamped to Milvus' range 1..65536 and to
 * the rows per segment (k-means needs at least one point per cluster). Search nprobe ≈ nlist/16.
 * An empty collection gets the spec's nlist 1024 until there is data to size it from.
 *
 * HNSW by total rows:
 *   rows ≤ 1M        M 16   efConstruction 200   search ef 64
 *   1M < rows ≤ 10M  M 32   efConstruction 320   search ef 128
 *   rows > 10M       M 48   efConstruction 500   search ef 256
 * Bigger graphs keep recall at scale at the cost of memory (≈ M·8 bytes per vector) and build time.
 *
 * Metric: COSINE unless the vectors are known to be L2-normalized (then IP is equivalent and a bit
 * cheaper); the spec's "IP means cosine" holds only for normalized vectors.
 */
export type IndexType = 'HNSW' | 'IVF_FLAT';
export type Metric = 'COSINE' | 'IP' | 'L2';

export interface IndexSpec {
  readonly indexType: string;
  readonly metric: string;
  readonly params: Readonly<Record<string, number>>;
}

export interface IndexAdvice {
  readonly index: IndexSpec;
  readonly search: Readonly<Record<string, number>>;
  readonly reasons: readonly string[];
}

export interface SizeFacts {
  readonly rows: number;
  /** Sealed/flushed segments holding `rows`; 0 when unknown or empty. */
  readonly segments: number;
}

export const IVF_NLIST_MIN = 1;
export const IVF_NLIST_MAX = 65536;
export const SPEC_DEFAULT_NLIST = 1024;

export const HNSW_TIERS = [
  { maxRows: 1_000_000, M: 16, efConstruction: 200, ef: 64 },
  { maxRows: 10_000_000, M: 32, efConstruction: 320, ef: 128 },
  { maxRows: Number.POSITIVE_INFINITY, M: 48, efConstruction: 500, ef: 256 },
] as const;

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

export function rowsPerSegment(size: SizeFacts): number {
  return size.segments > 0 ? Math.ceil(size.rows / size.segments) : size.rows;
}

export function adviseIvfFlat(size: SizeFacts, metric: Metric): IndexAdvice {
  if (size.rows <= 0) {
    const nprobe = SPEC_DEFAULT_NLIST / 16;
    return {
      index: { indexType: 'IVF_FLAT', metric, params: { nlist: SPEC_DEFAULT_NLIST } },
      search: { nprobe },
      reasons: [
        `collection is empty: nlist ${SPEC_DEFAULT_NLIST} until there is data; run advise again after loading`,
      ],
    };
  }
  const perSegment = rowsPerSegment(size);
  const nlist = clamp(
    Math.round(4 * Math.sqrt(perSegment)),
    IVF_NLIST_MIN,
    Math.min(IVF_NLIST_MAX, perSegment),
  );
  const nprobe = clamp(Math.round(nlist / 16), 1, nlist);
  return {
    index: { indexType: 'IVF_FLAT', metric, params: { nlist } },
    search: { nprobe },
    reasons: [
      `${size.rows} rows in ${Math.max(size.segments, 1)} segment(s) ≈ ${perSegment} rows per segment`,
      `nlist = 4·√${perSegment} ≈ ${nlist} (IVF is built per segment; clamped to 1..65536 and ≤ rows per segment)`,
      `search with nprobe ≈ nlist/16 = ${nprobe}; raise it for recall, lower it for latency`,
    ],
  };
}

export function adviseHnsw(size: SizeFacts, metric: Metric): IndexAdvice {
  const tier = HNSW_TIERS.find((t) => size.rows <= t.maxRows) ?? HNSW_TIERS[HNSW_TIERS.length - 1]!;
  const range = Number.isFinite(tier.maxRows) ? `≤ ${tier.maxRows.toLocaleString('en-US')}` : '> 10,000,000';
  return {
    index: { indexType: 'HNSW', metric, params: { M: tier.M, efConstruction: tier.efConstruction } },
    search: { ef: tier.ef },
    reasons: [
      `${size.rows} rows (${range} tier): M ${tier.M}, efConstruction ${tier.efConstruction}`,
      `search with ef ≥ ${tier.ef} (and ≥ topK)`,
    ],
  };
}

export function adviseIndex(indexType: IndexType, metric: Metric, size: SizeFacts): IndexAdvice {
  return indexType === 'HNSW' ? adviseHnsw(size, metric) : adviseIvfFlat(size, metric);
}

/**
 * Why the live index differs from the advice in a way worth a rebuild; empty when it is fine.
 * IVF nlist tolerates a factor of 2 (growth alone should not trigger nightly rebuilds).
 */
export function indexDrift(current: IndexSpec | undefined, advised: IndexSpec): string[] {
  if (!current) return ['no index on the vector field'];
  const reasons: string[] = [];
  if (current.indexType !== advised.indexType) {
    reasons.push(`index type ${current.indexType}, configured ${advised.indexType}`);
  }
  if (current.metric !== advised.metric)
    reasons.push(`metric ${current.metric}, configured ${advised.metric}`);
  if (reasons.length) return reasons;
  if (advised.indexType === 'IVF_FLAT') {
    const have = current.params.nlist;
    const want = advised.params.nlist!;
    if (!have || Math.abs(Math.log2(have / want)) > 1)
      reasons.push(`nlist ${have ?? 'unset'}, advised ${want} (more than 2× apart)`);
  } else {
    for (const key of Object.keys(advised.params)) {
      if (current.params[key] !== advised.params[key]) {
        reasons.push(`${key} ${current.params[key] ?? 'unset'}, advised ${advised.params[key]}`);
      }
    }
  }
  return reasons;
}
