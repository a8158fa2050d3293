/**
 * The drills' summary table: each drill records one row (drill, fault injected, data check, outcome)
 * into the run's report file (test/global-setup.ts sets DBOPS_DRILL_REPORT); the global teardown
 * prints the table after the last test file. Rows are JSON lines, appended: test files run in
 * separate processes.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';

export interface DrillRow {
  /** The drill, as numbered in issue 15 and named in its test. */
  drill: string;
  /** What was done to the system. */
  fault: string;
  /** What was measured in the data (rows, checksums, objects), not just an exit code. */
  dataCheck: string;
  /** What happened: the workflow's report and what the database or store showed. */
  outcome: string;
}

/** Records a drill's row; call it after the drill's assertions passed (a failed drill records nothing). */
export function recordDrill(row: DrillRow): void {
  const file = process.env.DBOPS_DRILL_REPORT;
  if (!file) throw new Error('DBOPS_DRILL_REPORT unset: run drills through vitest (npm test)');
  appendFileSync(file, `${JSON.stringify(row)}\n`);
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const para of text.split('\n')) {
    let line = '';
    for (const word of para.split(/\s+/).filter(Boolean)) {
      if (line && line.length + 1 + word.length > width) {
        lines.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    lines.push(line);
  }
  return lines;
}

/** The table, plain text (it goes to CI logs), or undefined when no drill ran. */
export function drillTable(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  const rows = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as DrillRow)
    .sort((a, b) => a.drill.localeCompare(b.drill, 'en', { numeric: true }));
  if (rows.length === 0) return undefined;
  const widths = [26, 34, 38, 40] as const;
  const keys = ['drill', 'fault', 'dataCheck', 'outcome'] as const;
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const render = (cells: string[][]) => {
    const height = Math.max(...cells.map((c) => c.length));
    const out: string[] = [];
    for (let i = 0; i < height; i++)
      out.push(`| ${cells.map((c, k) => (c[i] ?? '').padEnd(widths[k]!)).join(' | ')} |`);
    return out;
  };
  const lines = [
    `Fault drills: ${rows.length} passed`,
    rule,
    ...render(['drill', 'fault injected', 'data check', 'outcome'].map((h) => [h])),
    rule,
  ];
  for (const row of rows) {
    lines.push(...render(keys.map((k, i) => wrap(row[k], widths[i]!))));
    lines.push(rule);
  }
  return lines.join('\n');
}

/** A drill's progress lines, `[<drill> +12.3 s] <what>`: seconds since the logger was made. */
export function stepLogger(drill: string): (what: string) => void {
  const t0 = Date.now();
  return (what) => console.log(`[${drill} +${((Date.now() - t0) / 1000).toFixed(1)} s] ${what}`);
}
