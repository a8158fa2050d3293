import { describe, expect, it } from 'vitest';
import { flywayChecksum } from '../../activities/postgres/migrations/checksum';
import { parseMigrationName } from '../../activities/postgres/migrations/files';
import { flywayLockKey } from '../../activities/postgres/migrations/lock';
import { splitStatements } from '../../activities/postgres/migrations/split';
import { compareVersions, parseVersion } from '../../activities/postgres/migrations/version';

// Expected values were written by Flyway 10.22.0 itself into flyway_schema_history.
const NON_ASCII_LF = "-- café ✓ 推荐\nCREATE TABLE t3(name text DEFAULT 'héllo');\nSELECT 1;\n";
const FLYWAY_NON_ASCII = 140178089;

describe('flywayChecksum', () => {
  it('matches Flyway for a plain LF file', () => {
    expect(flywayChecksum(Buffer.from('CREATE TABLE t1(id int);\n'))).toBe(-854523386);
  });

  it('matches Flyway for non-ASCII text (UTF-8 bytes)', () => {
    expect(flywayChecksum(Buffer.from(NON_ASCII_LF, 'utf8'))).toBe(FLYWAY_NON_ASCII);
  });

  it('gives CRLF, CR, BOM and BOM+CRLF copies the same checksum', () => {
    const crlf = NON_ASCII_LF.replace(/\n/g, '\r\n');
    const cr = NON_ASCII_LF.replace(/\n/g, '\r');
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(crlf, 'utf8')]);
    for (const variant of [Buffer.from(crlf), Buffer.from(cr), bom, Buffer.from(`\uFEFF${NON_ASCII_LF}`)]) {
      expect(flywayChecksum(variant)).toBe(FLYWAY_NON_ASCII);
    }
  });

  it('is a signed 32-bit int and changes when the content changes', () => {
    const a = flywayChecksum('SELECT 1;');
    const b = flywayChecksum('SELECT 2;');
    expect(a).not.toBe(b);
    for (const v of [a, b]) expect(v).toBe(v | 0);
  });

  it('ignores line terminators but not whitespace inside a line', () => {
    expect(flywayChecksum('a\nb')).toBe(flywayChecksum('ab'));
    expect(flywayChecksum('a b')).not.toBe(flywayChecksum('ab'));
  });
});

describe('migration names and versions', () => {
  it('parses Flyway names (version text kept, description with spaces)', () => {
    const m = parseMigrationName('V001__initial_schema.sql')!;
    expect(m.version.text).toBe('001');
    expect(m.description).toBe('initial schema');
    expect(parseMigrationName('V1_2__x.sql')!.version.text).toBe('1.2');
    expect(parseMigrationName('V1.2.3__x_y.sql')!.description).toBe('x y');
  });

  it('rejects bad names', () => {
    for (const bad of ['V1_x.sql', 'v1__x.sql', 'V__x.sql', 'Vabc__x.sql', 'V1__.sql', 'R__x.sql']) {
      expect(parseMigrationName(bad), bad).toBeUndefined();
    }
  });

  it('sorts numerically: 1.10 after 1.9, 001 equals 1, 1.0 equals 1', () => {
    const sorted = ['1.10', '1.9', '2', '1', '001.2'].map((v) => parseVersion(v)!).sort(compareVersions);
    expect(sorted.map((v) => v.text)).toEqual(['1', '001.2', '1.9', '1.10', '2']);
    expect(compareVersions(parseVersion('001')!, parseVersion('1')!)).toBe(0);
    expect(compareVersions(parseVersion('1.0')!, parseVersion('1')!)).toBe(0);
  });
});

describe('splitStatements', () => {
  it('splits on top-level semicolons only', () => {
    const sql = `-- a; comment
CREATE INDEX CONCURRENTLY i ON t (a); /* b; */
DO $$ BEGIN PERFORM 1; END $$;
SELECT 'x;y', "a;b", E'it\\'s;', $tag$ ; $tag$;
`;
    expect(splitStatements(sql)).toEqual([
      '-- a; comment\nCREATE INDEX CONCURRENTLY i ON t (a)',
      '/* b; */\nDO $$ BEGIN PERFORM 1; END $$',
      `SELECT 'x;y', "a;b", E'it\\'s;', $tag$ ; $tag$`,
    ]);
  });
});

describe('flywayLockKey', () => {
  it('is Flyway 10\'s key: 77431708279161 + Java hashCode of "schema"."table"', () => {
    // Java: "\"public\".\"flyway_schema_history\"".hashCode()
    let h = 0;
    for (const ch of '"public"."flyway_schema_history"') h = (Math.imul(h, 31) + ch.charCodeAt(0)) | 0;
    expect(flywayLockKey('public', 'flyway_schema_history')).toBe(77431708279161n + BigInt(h));
  });
});
