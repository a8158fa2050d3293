import { describe, expect, it } from 'vitest';
import { RestrictScanner } from '../../activities/postgres/restore/restrict-scan';

const KEY = 'o9G188ezOyNqKzUhjbK9IvlYgNyd39pi9LKODGZr1bP5fmbOTDhiPu9m6Er6f7n';

/** The shape of a pg_dump 18.6 plain dump (taken from a real one), with COPY data full of backslashes. */
const DUMP = [
  '--',
  '-- PostgreSQL database dump',
  '--',
  '',
  `\\restrict ${KEY}`,
  '',
  '-- Dumped from database version 18.6',
  '-- Dumped by pg_dump version 18.6',
  '',
  'SET statement_timeout = 0;',
  "SET client_encoding = 'UTF8';",
  "SELECT pg_catalog.set_config('search_path', '', false);",
  'CREATE TABLE public.notes (id integer, body text);',
  'COPY public.notes (id, body) FROM stdin;',
  '1\ta\\\\b\\tc\\nd',
  '2\t\\N',
  '3\tC:\\\\restrict\\\\x',
  '\\.',
  '',
  '--',
  '-- PostgreSQL database dump complete',
  '--',
  '',
  `\\unrestrict ${KEY}`,
  '',
].join('\n');

/** The scanner's verdict on `text`, fed in pieces of `size` bytes (all at once without). */
function scan(text: string, size?: number): string | undefined {
  const bytes = Buffer.from(text, 'utf8');
  const scanner = new RestrictScanner();
  const step = size ?? bytes.length;
  for (let i = 0; i < bytes.length; i += step) scanner.write(bytes.subarray(i, i + step));
  return scanner.end();
}

/** `DUMP` with line `at` (1-based) replaced by `lines`. */
function edit(at: number, ...lines: string[]): string {
  const all = DUMP.split('\n');
  all.splice(at - 1, 1, ...lines);
  return all.join('\n');
}

const restrictLine = DUMP.split('\n').indexOf(`\\restrict ${KEY}`) + 1;
const copyLine = DUMP.split('\n').indexOf('2\t\\N') + 1;
const unrestrictLine = DUMP.split('\n').indexOf(`\\unrestrict ${KEY}`) + 1;

describe('plain dump \\restrict scan', () => {
  it("accepts pg_dump's output in any chunking, with \\n or \\r\\n line ends", () => {
    for (const size of [undefined, 1, 2, 7, 11, 64, 4096])
      expect(scan(DUMP, size), `chunks of ${size}`).toBeUndefined();
    expect(scan(DUMP.replace(/\n/g, '\r\n'), 3)).toBeUndefined();
  });

  it('accepts long lines (COPY data of megabytes) inside the lock', () => {
    expect(scan(edit(copyLine, `2\t${'x\\\\'.repeat(1_000_000)}`), 65_536)).toBeUndefined();
  });

  it('refuses a script without \\restrict, naming the first command line', () => {
    const text = ['-- forged', '\\! touch /tmp/canary', 'SELECT 1;'].join('\n');
    expect(scan(text)).toMatch(/^line 2 comes before any "\\restrict <key>" line/);
    expect(scan('-- only comments\n\n')).toMatch(/has no "\\restrict <key>" line/);
  });

  it('refuses SQL before \\restrict', () => {
    expect(scan(edit(2, 'SET search_path = evil;'))).toMatch(/^line 2 comes before any "\\restrict/);
  });

  it('ends lines at \\r as psql does: a comment cannot hide a command behind a carriage return', () => {
    for (const size of [undefined, 1, 5])
      expect(scan(edit(2, '-- dumped\r\\! touch /tmp/canary'), size)).toMatch(
        /^line 3 comes before any "\\restrict/,
      );
  });

  it('refuses blank-looking lines that hide text beyond what is kept', () => {
    expect(scan(edit(2, `${' '.repeat(600)}\\! touch /tmp/canary`))).toMatch(/^line 2 comes before/);
  });

  it('refuses \\restrict with anything else on its line', () => {
    expect(scan(edit(restrictLine, `\\restrict ${KEY} \\! touch /tmp/canary`))).toMatch(
      new RegExp(`^line ${restrictLine} comes before any`),
    );
  });

  it('refuses \\unrestrict mid-line, where psql would lift the lock (any case, any chunking)', () => {
    for (const line of [`SELECT 1; \\unrestrict ${KEY}`, `SELECT 1; \\UNRESTRICT ${KEY}`])
      for (const size of [undefined, 1, 4, 13])
        expect(scan(edit(copyLine + 2, line, '\\! touch /tmp/canary'), size)).toMatch(
          new RegExp(`^line ${copyLine + 2} holds "\\\\unrestrict" among other text`),
        );
  });

  it('refuses \\unrestrict split across lines by \\r', () => {
    expect(scan(edit(copyLine + 2, `SELECT 1;\r\\unrestrict ${KEY} x`))).toMatch(/holds "\\unrestrict"/);
  });

  it('refuses an escaped \\\\unrestrict in COPY data too (a false refusal of odd data, never a miss)', () => {
    expect(scan(edit(copyLine, `2\tsee \\\\unrestrict ${KEY}`))).toMatch(
      new RegExp(`^line ${copyLine} holds "\\\\unrestrict"`),
    );
  });

  it('refuses \\unrestrict with another key, a second one, and anything after it', () => {
    expect(scan(edit(unrestrictLine, '\\unrestrict otherkey'))).toMatch(/with another key/);
    expect(scan(edit(unrestrictLine, `\\unrestrict ${KEY}`, `\\unrestrict ${KEY}`))).toMatch(
      new RegExp(`^line ${unrestrictLine + 1} follows the "\\\\unrestrict" line`),
    );
    expect(scan(`${DUMP}\\! touch /tmp/canary\n`)).toMatch(/follows the "\\unrestrict" line/);
    expect(scan(`${DUMP}SELECT 1;`)).toMatch(/follows the "\\unrestrict" line/);
    expect(scan(`${DUMP}-- trailing comment\n\n`)).toBeUndefined();
  });

  it('refuses a script that never leaves the lock (truncated)', () => {
    expect(scan(DUMP.slice(0, DUMP.indexOf('\\.')))).toMatch(/never reaches its "\\unrestrict <key>" line/);
  });
});
