/** A deterministic unit vector: mulberry32 with exact 32-bit integer math, so the same seed always gives the same vector. */
export function seededUnitVector(seed: number, dim: number): number[] {
  let a = (seed + 0x9e3779b9) | 0;
  const v = Array.from({ length: dim }, () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  });
  const norm = Math.hypot(...v);
  return v.map((c) => c / norm);
}
