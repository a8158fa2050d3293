import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type BackupEntry, isGoodBackup, planPrune } from '../../common/backup';
import { canonicalJson, sha256Hex } from '../../common/canonical-hash';
import { restoreWorkflowId, verifyWorkflowId } from '../../common/ids';
import {
  assertRestoreTarget,
  maxBaseLength,
  parseDerivedDatabaseName,
  parseMark,
  parsePreRestoreComment,
  preRestoreDatabaseName,
  shadowDatabaseName,
  verifyScratchDatabaseName,
} from '../../common/restore';

const t = new Date(Date.UTC(2026, 10, 26, 3, 4, 5));

describe('derived database names', () => {
  it('builds and parses the exact formats db cleanup relies on', () => {
    expect(shadowDatabaseName('recsys', t)).toBe('recsys__restore_20261126030405');
    expect(preRestoreDatabaseName('recsys', t)).toBe('recsys__pre_restore_20261126030405');
    expect(verifyScratchDatabaseName('recsys', t)).toBe('recsys__verify_20261126030405');
    expect(parseDerivedDatabaseName('recsys__pre_restore_20261126030405')).toEqual({
      kind: 'pre_restore',
      base: 'recsys',
      time: t,
    });
    expect(parseDerivedDatabaseName('my__db__restore_20261126030405')).toEqual({
      kind: 'restore',
      base: 'my__db',
      time: t,
    });
    expect(parseDerivedDatabaseName('recsys__verify_20261126030405')?.kind).toBe('verify');
    for (const other of [
      'recsys',
      'recsys__restore_2026112603040',
      'recsys__restore_20261399030405',
      '__restore_20261126030405',
      'x__backup_20261126030405',
    ]) {
      expect(parseDerivedDatabaseName(other)).toBeUndefined();
    }
  });

  it('refuses hostile and too-long names with a clear message', () => {
    expect(() => shadowDatabaseName('"; DROP DATABASE recsys; --', t)).toThrow(/not valid: use letters/);
    expect(() => shadowDatabaseName('../x', t)).toThrow(/not valid/);
    expect(() => shadowDatabaseName('', t)).toThrow(/not valid/);
    const longest = 'a'.repeat(maxBaseLength('pre_restore'));
    expect(() => assertRestoreTarget(longest)).not.toThrow();
    expect(preRestoreDatabaseName(longest, t)).toHaveLength(63);
    expect(() => assertRestoreTarget(`${longest}b`)).toThrow(
      /too long for a restore: 36 bytes, at most 35.*63-byte limit/,
    );
  });

  it('parses only dbops pre-restore comments', () => {
    const c = {
      dbops: 'pre_restore',
      target: 'recsys',
      workflowId: 'w',
      keepUntil: '2026-12-03T00:00:00.000Z',
    };
    expect(parsePreRestoreComment(JSON.stringify(c))).toEqual(c);
    expect(parsePreRestoreComment('hand-written comment')).toBeUndefined();
    expect(parsePreRestoreComment(JSON.stringify({ dbops: 'other' }))).toBeUndefined();
    expect(parsePreRestoreComment(null)).toBeUndefined();
    expect(
      parsePreRestoreComment(JSON.stringify({ dbops: 'pre_restore', target: 'recsys' })),
    ).toBeUndefined();
  });

  it('reads only the marks dbops writes', () => {
    const shadow = { dbops: 'restore', workflowId: 'w', createdAt: '2026-11-26T03:04:05.000Z' };
    expect(parseMark(JSON.stringify(shadow))).toEqual(shadow);
    expect(parseMark(JSON.stringify({ dbops: 'swapped_in', from: 'x', workflowId: 'w' }))?.dbops).toBe(
      'swapped_in',
    );
    expect(parseMark(JSON.stringify({ dbops: 'verify', workflowId: 'w' }))).toBeUndefined();
    expect(parseMark(JSON.stringify({ dbops: 'dropme', workflowId: 'w' }))).toBeUndefined();
    expect(parseMark('[1]')).toBeUndefined();
    expect(parseMark('null')).toBeUndefined();
    expect(parseMark('a user comment')).toBeUndefined();
  });

  it('workflow ids are deterministic', () => {
    expect(restoreWorkflowId('recsys', new Date(t.getTime() + 123))).toBe(
      'restore-recsys-2026-11-26T03:04:05Z',
    );
    expect(verifyWorkflowId('recsys_20261126_030000')).toBe('verify-recsys_20261126_030000');
  });
});

describe('plan hash', () => {
  it('pure SHA-256 equals node:crypto, for ASCII, multi-byte and block-boundary lengths', () => {
    for (const text of [
      '',
      'abc',
      'é→😀 restore',
      'x'.repeat(55),
      'x'.repeat(56),
      'y'.repeat(64),
      'z'.repeat(1000),
    ]) {
      expect(sha256Hex(text)).toBe(createHash('sha256').update(text, 'utf8').digest('hex'));
    }
  });

  it('canonical JSON ignores key order and undefined, keeps array order', () => {
    expect(canonicalJson({ b: 1, a: [2, { d: 1, c: undefined, b: 'x' }] })).toBe(
      '{"a":[2,{"b":"x","d":1}],"b":1}',
    );
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }));
    expect(canonicalJson([1, 2])).not.toBe(canonicalJson([2, 1]));
  });
});

describe('good backups once verification exists', () => {
  const e = (day: number, verification?: 'passed' | 'failed'): BackupEntry => ({
    id: `db_202601${String(day).padStart(2, '0')}_000000`,
    database: 'db',
    time: new Date(Date.UTC(2026, 0, day)).toISOString(),
    complete: true,
    verification: verification ? { status: verification, checkedAt: 'x' } : undefined,
    storedBytes: 1,
  });
  it('without any verification, complete backups are good', () => {
    const all = [e(1), e(2)];
    expect(all.filter(isGoodBackup).map((x) => x.id)).toEqual([e(1).id, e(2).id]);
  });
  it('with verification in use, only verified ones are good; retention keeps the newest verified', () => {
    const all = [e(1, 'passed'), e(2, 'failed'), e(3)];
    expect(all.filter(isGoodBackup).map((x) => x.id)).toEqual([e(1).id]);
    const decisions = planPrune(all, { retentionDays: 1, minKeep: 1 }, new Date(Date.UTC(2026, 5, 1)));
    expect(decisions.find((d) => d.entry.id === e(1).id)?.action).toBe('keep');
    expect(decisions.find((d) => d.entry.id === e(3).id)?.action).toBe('delete');
  });
});
