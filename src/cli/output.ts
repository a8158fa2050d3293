import Table from 'cli-table3';
import { ConfigError } from '../config';
import { failureTypeOf, rootMessage } from '../../common/failures';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printTable(head: string[], rows: (string | number | boolean | null | undefined)[][]): void {
  const table = new Table({ head, style: { head: ['cyan'] } });
  for (const row of rows)
    table.push(row.map((cell) => (cell === null || cell === undefined ? '' : String(cell))));
  process.stdout.write(`${table.toString()}\n`);
}

/** Exit codes: 1 operation failed, 2 bad input or configuration. */
export function reportError(err: unknown): number {
  if (err instanceof ConfigError) {
    process.stderr.write(`dbops: ${err.message}\n`);
    return 2;
  }
  const type = failureTypeOf(err);
  const message = rootMessage(err);
  process.stderr.write(`dbops: ${type ? `[${type}] ` : ''}${message}\n`);
  return type === 'InvalidInput' || type === 'NotFound' || type === 'Misconfigured' ? 2 : 1;
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function humanDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}
