/** The pieces of `dbops backups adopt` that need no server: names, the --verbose filter, the lock, retention. */
import { describe, expect, it } from 'vitest';
import { VerboseFilter } from '../../activities/postgres/verbose-filter';
import { PlainDumpText } from '../../activities/postgres/restore/plain-text';
import { specBackupId } from '../../common/adopted';
import { type BackupEntry, type BackupManifest, isGoodBackup } from '../../common/backup';

/** Runs `text` through a filter in chunks of `size` bytes. */
function filtered(text: string, size: number): { out: string; filter: VerboseFilter } {
  const filter = new VerboseFilter();
  const buf = Buffer.from(text, 'latin1');
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(filter.write(buf.subarray(i, i + size)));
  parts.push(filter.end());
  return { out: Buffer.concat(parts).toString('latin1'), filter };
}

const DUMP = [
  'pg_dump: last built-in OID is 16383\n',
  '--\n-- PostgreSQL database dump\n--\n',
  'COPY public.t (id, s) FROM stdin;\n1\tabc\n2\txxxxxxxxxxxxxxxx',
  'pg_dump: processing data for table "public.u"\n',
  'yyyy\n\\.\n',
  'pg_dump: warning: could not find where to insert IF EXISTS in statement\n',
  '3\tsays pg_dump: hello world\n',
  'pg_dump: error: query failed\n',
  '-- PostgreSQL database dump complete\n',
].join('');
const CLEAN = [
  '--\n-- PostgreSQL database dump\n--\n',
  'COPY public.t (id, s) FROM stdin;\n1\tabc\n2\txxxxxxxxxxxxxxxxyyyy\n\\.\n',
  '3\tsays pg_dump: hello world\n',
  'pg_dump: error: query failed\n',
  '-- PostgreSQL database dump complete\n',
].join('');

describe('pg_dump --verbose lines in a spec dump', () => {
  it.each([1, 2, 7, 9, 64, 1 << 20])(
    'removes progress messages wherever they start, in chunks of %i bytes, and keeps everything else',
    (size) => {
      const { out, filter } = filtered(DUMP, size);
      expect(out).toBe(CLEAN);
      expect(filter.removed).toBe(3);
      expect(filter.warnings).toEqual(['warning: could not find where to insert IF EXISTS in statement']);
      // Not a progress message: kept as text, and reported.
      expect(filter.others).toEqual(['hello world', 'error: query failed']);
    },
  );
  it('keeps a message that never ends (no newline) as text', () => {
    expect(filtered('abc pg_dump: reading schemas', 4).out).toBe('abc pg_dump: reading schemas');
  });
  it('passes any byte through unchanged (latin1 round trip of UTF-8 and binary)', () => {
    const text = 'ünïcødé\tπ\n\u0000\u00ff';
    expect(filtered(Buffer.from(text, 'utf8').toString('latin1'), 3).out).toBe(
      Buffer.from(text, 'utf8').toString('latin1'),
    );
  });
});

describe("the spec's file names", () => {
  it('map <db>_<yyyymmdd>_<hhmmss>.sql.gz to the dbops backup id', () => {
    expect(specBackupId('recommend_20261101_020000.sql.gz')).toEqual({ id: 'recommend_20261101_020000' });
  });
  it.each([
    ['recommend_latest.sql.gz', /link to its newest backup/],
    ['notes.txt', /not named like a backup/],
    ['recommend_20261301_020000.sql.gz', /not a valid database name and time/],
    ['../x_20261101_020000.sql.gz', /not a valid database name and time/],
  ])('refuse %s', (name, why) => {
    const r = specBackupId(name);
    expect('problem' in r && r.problem).toMatch(why);
  });
});

const adopted = (restrictLock: 'own' | 'added') => ({
  adopted: { source: 'x', adoptedAt: new Date(0).toISOString(), verboseLines: 0, restrictLock },
});

describe('the \\restrict lock of an adopted dump', () => {
  const OLD = '--\n-- PostgreSQL database dump\n--\nSELECT 1;\n-- PostgreSQL database dump complete\n';
  const read = (text: PlainDumpText, body: string) =>
    Buffer.concat([text.begin(), text.write(Buffer.from(body)), text.end()]).toString();

  it('an old dump (no lock of its own) gets a fresh key for each read, around all of it', () => {
    const a = new PlainDumpText(adopted('added'));
    const b = new PlainDumpText(adopted('added'));
    const [ra, rb] = [read(a, OLD), read(b, OLD)];
    const m = /^\\restrict ([A-Za-z0-9]{64})\n([\s\S]*)\n\\unrestrict \1\n$/.exec(ra);
    expect(m?.[2]).toBe(OLD);
    expect(rb.slice(0, 74)).not.toBe(ra.slice(0, 74));
    expect(a.problem()).toBeUndefined();
  });
  it('refuses an old dump that tries to lift the lock', () => {
    const text = new PlainDumpText(adopted('added'));
    read(text, OLD.replace('SELECT 1;', '\\unrestrict guessed\n\\! id'));
    expect(text.problem()).toMatch(/unrestrict/);
  });
  it('an adopted dump without a lock is refused when it claims one of its own', () => {
    const text = new PlainDumpText(adopted('own'));
    read(text, OLD);
    expect(text.problem()).toMatch(/comes before any "\\restrict <key>" line/);
  });
});

describe('retention and adopted backups', () => {
  const entry = (verification?: 'passed'): BackupEntry => ({
    id: 'recommend_20261101_020000',
    database: 'recommend',
    time: '2026-11-01T02:00:00.000Z',
    complete: true,
    manifest: adopted('added') as unknown as BackupManifest,
    ...(verification && { verification: { status: verification, checkedAt: '2026-12-01T00:00:00.000Z' } }),
    storedBytes: 1,
  });
  it('an adopted backup is good only once a test restore passed', () => {
    expect(isGoodBackup(entry())).toBe(false);
    expect(isGoodBackup(entry('passed'))).toBe(true);
  });
});
