import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeConfig, loadConfig } from '../../src/config';
import { configProblems } from '../helpers/errors';

const base = { DBOPS_STACK_HOME: '/nonexistent-stack-home' };
const s3 = {
  DBOPS_S3_BUCKET: 'dbops-backups',
  DBOPS_S3_ENDPOINT: 'http://127.0.0.1:19002',
  DBOPS_S3_ALLOW_HTTP: 'true',
};

const problemsOf = (env: Record<string, string>) => configProblems({ ...base, ...env });

describe('DBOPS_BACKUP_MIRROR', () => {
  it('unset or none: the S3 store has no local copy', () => {
    for (const mirror of [{}, { DBOPS_BACKUP_MIRROR: 'none' }]) {
      const config = loadConfig({ ...base, ...s3, DBOPS_BACKUP_DIR: '/srv/backups', ...mirror });
      expect(config.storage).toMatchObject({ kind: 's3', bucket: 'dbops-backups' });
      expect(config.storage.kind === 's3' && config.storage.mirror).toBeFalsy();
    }
  });

  it('local: the S3 store keeps its copy in DBOPS_BACKUP_DIR (or BACKUP_DIR), frozen', () => {
    const config = loadConfig({ ...base, ...s3, DBOPS_BACKUP_MIRROR: 'local', DBOPS_BACKUP_DIR: 'rel/dir' });
    expect(config.storage).toMatchObject({
      kind: 's3',
      mirror: { kind: 'local', dir: path.resolve('rel/dir') },
    });
    expect(Object.isFrozen(config.storage.kind === 's3' && config.storage.mirror)).toBe(true);
    const fromScript = loadConfig(
      { ...base, S3_BUCKET: 'dbops-backups', BACKUP_DIR: '/backups', DBOPS_BACKUP_MIRROR: 'local' },
      () => undefined,
    );
    expect(fromScript.storage).toMatchObject({ kind: 's3', mirror: { dir: '/backups' } });
  });

  it('local without DBOPS_BACKUP_DIR: the local store default folder', () => {
    const config = loadConfig({ ...base, ...s3, DBOPS_BACKUP_MIRROR: 'local' });
    expect(config.storage).toMatchObject({ mirror: { dir: '/nonexistent-stack-home/backups' } });
  });

  it('local without an S3 store: an error naming both variables and the fix', () => {
    const [noBucket] = problemsOf({ DBOPS_BACKUP_MIRROR: 'local' });
    expect(noBucket).toMatch(/^DBOPS_BACKUP_MIRROR=local .*DBOPS_S3_BUCKET is unset.*set DBOPS_S3_BUCKET/);
    expect(noBucket).toContain('or unset DBOPS_BACKUP_MIRROR');
    const [localStore] = problemsOf({ ...s3, DBOPS_STORAGE: 'local', DBOPS_BACKUP_MIRROR: 'local' });
    expect(localStore).toMatch(/DBOPS_BACKUP_MIRROR=local .*\(DBOPS_STORAGE=local\)/);
  });

  it('any other value is refused naming the variable and the choices', () => {
    const [problem] = problemsOf({ ...s3, DBOPS_BACKUP_MIRROR: 'both' });
    expect(problem).toBe(
      'DBOPS_BACKUP_MIRROR="both": must be local (also keep each backup in DBOPS_BACKUP_DIR) or none (S3 only)',
    );
  });

  it('dbops config shows the mirror and its folder', () => {
    const rows = (env: Record<string, string>) =>
      Object.fromEntries(describeConfig(loadConfig({ ...base, ...env }), env).map((r) => [r.name, r]));
    const on = rows({ ...s3, DBOPS_BACKUP_MIRROR: 'local', DBOPS_BACKUP_DIR: '/srv/copy' });
    expect(on.DBOPS_BACKUP_MIRROR).toMatchObject({ value: 'local', source: 'env' });
    expect(on.DBOPS_BACKUP_DIR).toMatchObject({ value: '/srv/copy', source: 'env' });
    const off = rows(s3);
    expect(off.DBOPS_BACKUP_MIRROR).toMatchObject({ value: 'none', source: 'default' });
    expect(off.DBOPS_BACKUP_DIR).toBeUndefined();
  });
});
