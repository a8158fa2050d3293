import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pgBasebackupArgs } from '../../activities/postgres/basebackup/take';
import { findTarMembers, parseTarHeader } from '../../activities/postgres/basebackup/tar';
import {
  type BaseBackupEntry,
  type BaseBackupManifest,
  chainLinkProblem,
  incrementalParent,
  lsnValue,
  makeBaseBackupId,
  parseBackupLabel,
  parseBaseBackupId,
  summarizePgManifest,
} from '../../common/basebackup';
import { baseBackupWorkflowId } from '../../common/ids';
import { baseBackupObjectKey } from '../../common/pitr';

// backup_label and the head and tail of a backup_manifest as PostgreSQL 18 wrote them on the dev stack.
const FULL_LABEL = `START WAL LOCATION: C/DD000028 (file 000000010000000C000000DD)
CHECKPOINT LOCATION: C/DD000080
BACKUP METHOD: streamed
BACKUP FROM: primary
START TIME: 2026-12-05 00:43:21 UTC
LABEL: pg_basebackup base backup
START TIMELINE: 1
`;
const INCREMENTAL_LABEL = `START WAL LOCATION: C/DF000028 (file 000000010000000C000000DF)
CHECKPOINT LOCATION: C/DF000080
BACKUP METHOD: streamed
BACKUP FROM: primary
START TIME: 2026-12-05 00:43:58 UTC
LABEL: pg_basebackup base backup
START TIMELINE: 1
INCREMENTAL FROM LSN: C/DD000028
INCREMENTAL FROM TLI: 1
`;
const PG_MANIFEST = `{ "PostgreSQL-Backup-Manifest-Version": 2,
"System-Identifier": 7715406755856891660,
"Files": [
{ "Path": "backup_label", "Size": 227, "Last-Modified": "2026-12-05 00:43:21 GMT", "Checksum-Algorithm": "SHA256", "Checksum": "ce2cea23c5c2463f44b9fbe36d73c1193c514503b80662285d114111aa54a6ae" },
{ "Path": "PG_VERSION", "Size": 3, "Last-Modified": "2026-12-05 00:15:00 GMT", "Checksum-Algorithm": "SHA256", "Checksum": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" }
],
"WAL-Ranges": [
{ "Timeline": 1, "Start-LSN": "C/DD000028", "End-LSN": "C/DD000120" }
],
"Manifest-Checksum": "bd6501c76f5ded7d82ec25c5704d6ee20506dc55813f8f2aaee1e66267b106ea"}
`;

describe('base backup ids', () => {
  it('sort by time, name their kind, and refuse anything else', () => {
    const t = new Date('2026-12-05T03:04:05Z');
    expect(makeBaseBackupId(t, 'full')).toBe('20261205T030405Z-full');
    expect(parseBaseBackupId('20261205T030405Z-incremental')).toEqual({
      id: '20261205T030405Z-incremental',
      time: t,
      kind: 'incremental',
    });
    for (const bad of ['20261305T030405Z-full', '20261205T030405Z-diff', '../20261205T030405Z-full', ''])
      expect(() => parseBaseBackupId(bad)).toThrow(/expected <yyyymmdd>T<hhmmss>Z-full\|incremental/);
    expect(makeBaseBackupId(t, 'full') < makeBaseBackupId(new Date('2026-12-05T03:04:06Z'), 'full')).toBe(
      true,
    );
  });

  it('give one workflow per kind and minute, and keys under pitr/<sysid>/base/<id>/', () => {
    const t = new Date('2026-12-05T03:04:05Z');
    expect(baseBackupWorkflowId('full', t, '7715')).toBe('basebackup-7715-full-2026-12-05T03:04:00Z');
    expect(baseBackupWorkflowId('incremental', t, '7715')).toBe(
      'basebackup-7715-incremental-2026-12-05T03:04:00Z',
    );
    expect(baseBackupObjectKey('7715406755856891660', '20261205T030405Z-full', 'base.tar.zst')).toBe(
      'pitr/7715406755856891660/base/20261205T030405Z-full/base.tar.zst',
    );
    expect(() => baseBackupObjectKey('7715406755856891660', '../x', 'base.tar.zst')).toThrow(
      /not a base backup object/,
    );
  });
});

describe("PostgreSQL's backup_label and backup_manifest", () => {
  it('reads the start, the timeline and the incremental link from backup_label', () => {
    expect(parseBackupLabel(FULL_LABEL)).toEqual({
      startLsn: 'C/DD000028',
      timeline: 1,
      startTime: '2026-12-05 00:43:21 UTC',
    });
    expect(parseBackupLabel(INCREMENTAL_LABEL).incrementalFrom).toEqual({ lsn: 'C/DD000028', timeline: 1 });
    expect(() => parseBackupLabel('LABEL: x\n')).toThrow(/no "START WAL LOCATION" line/);
    expect(() => parseBackupLabel(FULL_LABEL.replace('C/DD000028 ', 'nowhere '))).toThrow(
      /not a WAL location/,
    );
  });

  it('keeps every digit of the system identifier, which JSON numbers would round', () => {
    const s = summarizePgManifest(PG_MANIFEST);
    expect(String(JSON.parse(PG_MANIFEST)['System-Identifier'])).not.toBe('7715406755856891660');
    expect(s).toEqual({
      systemIdentifier: '7715406755856891660',
      files: 2,
      timeline: 1,
      startLsn: 'C/DD000028',
      stopLsn: 'C/DD000120',
    });
    expect(() => summarizePgManifest('{ "PostgreSQL-Backup-Manifest-Version": 1, "Files": [] }')).toThrow(
      /no System-Identifier/,
    );
  });

  it('orders WAL locations as numbers, not as text', () => {
    expect(lsnValue('10/0') > lsnValue('F/FFFFFFFF')).toBe(true);
    expect(lsnValue('C/DD000120') - lsnValue('C/DD000028')).toBe(0xf8n);
    expect(() => lsnValue('C-DD')).toThrow(/not a WAL location/);
  });
});

describe('incremental chains', () => {
  const manifest = (id: string, startLsn: string): BaseBackupManifest =>
    ({ id, startLsn, timeline: 1, verification: { verdict: 'passed' } }) as BaseBackupManifest;
  const entry = (id: string, complete: boolean): BaseBackupEntry => ({
    id,
    kind: parseBaseBackupId(id).kind,
    time: parseBaseBackupId(id).time.toISOString(),
    complete,
    ...(complete && { manifest: manifest(id, 'C/DD000028') }),
    storedBytes: 1,
  });

  it('build on the newest complete base backup, never an incomplete one; none without a full one', () => {
    expect(incrementalParent([])).toBeUndefined();
    expect(incrementalParent([entry('20261205T030000Z-full', false)])).toBeUndefined();
    const entries = [
      entry('20261204T030000Z-full', true),
      entry('20261205T030000Z-incremental', true),
      entry('20261206T030000Z-incremental', false),
    ];
    expect(incrementalParent(entries)?.id).toBe('20261205T030000Z-incremental');
  });

  it("check the incremental's backup_label names its parent's start, as pg_combinebackup will", () => {
    const parent = manifest('20261205T004321Z-full', 'C/DD000028');
    expect(chainLinkProblem(parent, parseBackupLabel(INCREMENTAL_LABEL))).toBeUndefined();
    expect(
      chainLinkProblem({ ...parent, startLsn: 'C/DC000028' }, parseBackupLabel(INCREMENTAL_LABEL)),
    ).toMatch(
      /builds on the backup that started at C\/DD000028 on timeline 1, but its parent 20261205T004321Z-full started at C\/DC000028/,
    );
    expect(chainLinkProblem(parent, parseBackupLabel(FULL_LABEL))).toMatch(/not an incremental backup/);
  });
});

describe('pg_basebackup and its tar', () => {
  it('streams one tar with its WAL to stdout, never the password in argv', () => {
    const args = pgBasebackupArgs('20261205T030405Z-incremental', '/tmp/parent_backup_manifest');
    expect(args).toEqual(
      expect.arrayContaining([
        '--pgdata=-',
        '--format=tar',
        '--wal-method=fetch',
        '--manifest-checksums=SHA256',
        '--incremental=/tmp/parent_backup_manifest',
      ]),
    );
    expect(
      pgBasebackupArgs('20261205T030405Z-full', undefined).some((a) => a.startsWith('--incremental')),
    ).toBe(false);
    expect(args.join(' ')).not.toMatch(/password=|PGPASSWORD/i);
  });

  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbops-unit-tar-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('finds members by walking the headers of a tar written by GNU tar, and their exact bytes', async () => {
    const src = path.join(dir, 'src');
    execFileSync('mkdir', ['-p', path.join(src, 'base', '1')]);
    writeFileSync(path.join(src, 'backup_label'), FULL_LABEL);
    writeFileSync(path.join(src, 'base', '1', '1259'), Buffer.alloc(8192 + 17, 7));
    writeFileSync(path.join(src, 'backup_manifest'), PG_MANIFEST);
    const tar = path.join(dir, 'base.tar');
    execFileSync('tar', ['--format=ustar', '-C', src, '-cf', tar, 'backup_label', 'base', 'backup_manifest']);
    const { members, count } = await findTarMembers(tar, ['backup_label', 'backup_manifest']);
    expect(count).toBe(5);
    const bytes = readFileSync(tar);
    const at = (name: string) => {
      const m = members.get(name)!;
      return bytes.subarray(m.offset, m.offset + m.size).toString();
    };
    expect(at('backup_label')).toBe(FULL_LABEL);
    expect(at('backup_manifest')).toBe(PG_MANIFEST);
    // A damaged header is refused by its checksum; a truncated archive by its missing end.
    const damaged = Buffer.from(bytes.subarray(0, 512));
    damaged[0] = damaged[0]! ^ 1;
    expect(() => parseTarHeader(damaged)).toThrow(/checksum/);
    const cut = path.join(dir, 'cut.tar');
    writeFileSync(cut, bytes.subarray(0, members.get('backup_manifest')!.offset - 512));
    await expect(findTarMembers(cut, ['backup_manifest'])).rejects.toThrow(/no end-of-archive block/);
  });

  it('reads sizes of 8 GiB and more in base-256', () => {
    const header = Buffer.alloc(512);
    header.write('base/1/big', 0, 'latin1');
    header[124] = 0x80;
    header.writeUIntBE(9 * 2 ** 30, 130, 6);
    header[156] = 0x30;
    header.write('        ', 148, 'latin1');
    let sum = 0;
    for (const b of header) sum += b;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    expect(parseTarHeader(header)).toEqual({ name: 'base/1/big', size: 9 * 2 ** 30, type: '0' });
  });
});
