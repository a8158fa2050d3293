/** One sample of the Prometheus text format: `name{label="value",...} number`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Every sample of `name` in a scrape (comments skipped), in order. */
export function samples(text: string, name: string): Sample[] {
  const found: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (m[2] ?? '').matchAll(LABEL)) labels[key!] = value!.replace(/\\(.)/g, '$1');
    found.push({ name, labels, value: Number(m[3]) });
  }
  return found;
}

/**
 * The value of the one sample of `name` whose labels include `labels`; undefined when there is none.
 * Throws when several match: the caller named too few labels to mean one series.
 */
export function sampleValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  const matching = samples(text, name).filter((s) =>
    Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (matching.length > 1) {
    throw new Error(
      `${matching.length} samples of ${name} match ${JSON.stringify(labels)}: name more labels`,
    );
  }
  return matching[0]?.value;
}
