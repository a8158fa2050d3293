/** A small, fast, seeded PRNG (mulberry32) and helpers: the same seed always gives the same data. */
export class Prng {
  private state: number;

  constructor(seed: number, stream = 0) {
    this.state = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(stream + 1, 0xc2b2ae35)) >>> 0;
    for (let i = 0; i < 4; i++) this.u32();
  }

  u32(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** [0, 1) */
  next(): number {
    return this.u32() / 4294967296;
  }

  int(maxExclusive: number): number {
    return Math.floor(this.next() * maxExclusive);
  }

  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)]!;
  }

  /** Standard normal (Box-Muller). */
  gaussian(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** The same UUID as uuid() would draw, as its 16 bytes written into dst at off. */
  uuidInto(dst: Uint8Array, off: number): void {
    const a = this.u32();
    const b = this.u32();
    const c = this.u32();
    const d = this.u32();
    dst[off] = a >>> 24;
    dst[off + 1] = (a >>> 16) & 255;
    dst[off + 2] = (a >>> 8) & 255;
    dst[off + 3] = a & 255;
    dst[off + 4] = b >>> 24;
    dst[off + 5] = (b >>> 16) & 255;
    dst[off + 6] = ((b >>> 8) & 0x0f) | 0x40;
    dst[off + 7] = b & 255;
    dst[off + 8] = ((c >>> 24) & 0x3f) | 0x80;
    dst[off + 9] = (c >>> 16) & 255;
    dst[off + 10] = (c >>> 8) & 255;
    dst[off + 11] = c & 255;
    dst[off + 12] = d >>> 24;
    dst[off + 13] = (d >>> 16) & 255;
    dst[off + 14] = (d >>> 8) & 255;
    dst[off + 15] = d & 255;
  }

  /** A version-4-shaped UUID drawn from this stream. */
  uuid(): string {
    const a = this.u32();
    const b = this.u32();
    const c = this.u32();
    const d = this.u32();
    const H = HEX;
    return (
      H[a >>> 24]! +
      H[(a >>> 16) & 255]! +
      H[(a >>> 8) & 255]! +
      H[a & 255]! +
      '-' +
      H[b >>> 24]! +
      H[(b >>> 16) & 255]! +
      '-' +
      H[((b >>> 8) & 0x0f) | 0x40]! +
      H[b & 255]! +
      '-' +
      H[((c >>> 24) & 0x3f) | 0x80]! +
      H[(c >>> 16) & 255]! +
      '-' +
      H[(c >>> 8) & 255]! +
      H[c & 255]! +
      H[d >>> 24]! +
      H[(d >>> 16) & 255]! +
      H[(d >>> 8) & 255]! +
      H[d & 255]!
    );
  }
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** The text form of the UUID whose 16 bytes start at off. */
export function uuidText(b: Uint8Array, off: number): string {
  const H = HEX;
  let s = '';
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) s += '-';
    s += H[b[off + i]!]!;
  }
  return s;
}

/** Index sampler with P(k) ∝ 1/(k+1)^s over n ranks (long-tail popularity), by inverse CDF. */
export class Zipf {
  private readonly cdf: Float64Array;

  constructor(n: number, s: number) {
    this.cdf = new Float64Array(n);
    let sum = 0;
    for (let k = 0; k < n; k++) this.cdf[k] = sum += 1 / Math.pow(k + 1, s);
    for (let k = 0; k < n; k++) this.cdf[k]! /= sum;
  }

  sample(rng: Prng): number {
    const u = rng.next();
    let lo = 0;
    let hi = this.cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Picks an index by weights (small tables: actions, hours, devices). */
export function weightedPicker(weights: readonly number[]): (rng: Prng) => number {
  const total = weights.reduce((a, b) => a + b, 0);
  const cdf = weights.map(
    (
      (acc) => (w: number) =>
        (acc += w / total)
    )(0),
  );
  return (rng) => {
    const u = rng.next();
    for (let i = 0; i < cdf.length; i++) if (u < cdf[i]!) return i;
    return cdf.length - 1;
  };
}
