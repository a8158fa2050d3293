import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ManifestKey, signatureProblem, signManifest } from '../../activities/storage/manifest-key';
import { parseManifest } from '../../activities/storage/manifest-schema';
import { type BackupManifest } from '../../common/backup';
import { dumpOptionArgs, dumpOptionsOf, FULL_DUMP, parseDumpOptions } from '../../common/dump-options';
import { InputError } from '../../common/names';
import { backupWorkflowArgs } from '../../src/client/backup';
import { loadConfig } from '../../src/config';
import { backupSchedules } from '../../src/schedules/backup';
import { SAMPLE_ID, SAMPLE_MANIFEST } from '../helpers/manifests';

const ID = SAMPLE_ID;
/** A manifest as the backup workflow wrote it before dump options existed. */
const OLD: BackupManifest = SAMPLE_MANIFEST;
const WITHOUT_OWNERS: BackupManifest = { ...OLD, dumpOptions: { noOwner: true, noPrivileges: true } };

const problem = (value: unknown) => {
  const r = parseManifest(value, ID);
  return 'problem' in r ? r.problem : undefined;
};

describe('dump options in the manifest', () => {
  it('a manifest without the field still parses and means owners and grants were dumped', () => {
    const r = parseManifest(OLD, ID);
    expect(r).toEqual({ manifest: OLD });
    expect(dumpOptionsOf((r as { manifest: BackupManifest }).manifest)).toEqual({
      noOwner: false,
      noPrivileges: false,
    });
  });

  it('a manifest with the field parses and keeps it', () => {
    const r = parseManifest(WITHOUT_OWNERS, ID);
    expect(r).toEqual({ manifest: WITHOUT_OWNERS });
    expect(dumpOptionsOf(WITHOUT_OWNERS)).toEqual({ noOwner: true, noPrivileges: true });
  });

  it('refuses a malformed field, naming it', () => {
    expect(problem({ ...OLD, dumpOptions: { noOwner: 'yes', noPrivileges: false } })).toBe(
      'is not a dbops manifest: field dumpOptions.noOwner: Invalid input: expected boolean, received string',
    );
    expect(problem({ ...OLD, dumpOptions: { noOwner: true } })).toBe(
      'is not a dbops manifest: field dumpOptions.noPrivileges: missing (expected boolean)',
    );
    expect(problem({ ...OLD, dumpOptions: { noOwner: true, noPrivileges: true, noAcl: true } })).toBe(
      'is not a dbops manifest: unknown field "noAcl" in dumpOptions',
    );
  });

  it('the signature covers the options: flipping one after signing is refused', () => {
    const key = new ManifestKey(generateKeyPairSync('ed25519').privateKey);
    const signed = signManifest(WITHOUT_OWNERS, key);
    expect(signatureProblem(signed, key)).toBeUndefined();
    const edited = { ...signed, dumpOptions: { noOwner: false, noPrivileges: true } };
    expect(signatureProblem(edited, key)).toBe(
      `carries a signature of key ${key.keyId} that does not match its content: it was edited after signing`,
    );
    // Dropping the field is an edit too (an old-style manifest is not the same content).
    const { dumpOptions: _d, ...dropped } = signed;
    expect(signatureProblem(dropped, key)).toMatch(/does not match its content/);
  });
});

describe('dump options from input', () => {
  it('absent means a full dump; booleans pass; anything else is refused naming the variable', () => {
    expect(parseDumpOptions(undefined)).toEqual(FULL_DUMP);
    expect(parseDumpOptions({ noOwner: true })).toEqual({ noOwner: true, noPrivileges: false });
    expect(() => parseDumpOptions({ noOwner: 'true' })).toThrow(InputError);
    expect(() => parseDumpOptions({ noPrivileges: 1 })).toThrow(
      'dumpOptions.noPrivileges must be true or false, not 1 (DBOPS_DUMP_NO_PRIVILEGES sets it)',
    );
    expect(() => parseDumpOptions('no-owner')).toThrow(
      'dumpOptions must be { noOwner, noPrivileges }, not "no-owner"',
    );
  });

  it('pg_dump and pg_restore get the same flags', () => {
    expect(dumpOptionArgs(FULL_DUMP)).toEqual([]);
    expect(dumpOptionArgs({ noOwner: true, noPrivileges: false })).toEqual(['--no-owner']);
    expect(dumpOptionArgs({ noOwner: true, noPrivileges: true })).toEqual(['--no-owner', '--no-privileges']);
  });

  it('the config reaches manual and scheduled backups as workflow input', () => {
    const base = { DBOPS_STACK_HOME: '/nonexistent-stack-home' };
    const config = loadConfig({ ...base, DBOPS_DUMP_NO_OWNER: 'true', DBOPS_DUMP_NO_PRIVILEGES: 'true' });
    expect(backupWorkflowArgs(config, 'recsys', 'manual').dumpOptions).toEqual({
      noOwner: true,
      noPrivileges: true,
    });
    const [schedule] = backupSchedules(config);
    const [args] = (schedule!.action as { args: readonly ReturnType<typeof backupWorkflowArgs>[] }).args;
    expect(args!.dumpOptions).toEqual({
      noOwner: true,
      noPrivileges: true,
    });
    expect(backupWorkflowArgs(loadConfig(base), 'recsys', 'scheduled').dumpOptions).toEqual(FULL_DUMP);
  });
});
