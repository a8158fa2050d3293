import { describe, expect, it } from 'vitest';
import { buildInfo, buildOfIdentity, packageVersion, workerIdentity } from '../../src/build-info';
import { describeWorkerBuilds } from '../../src/doctor/worker-builds';

describe('build info', () => {
  it('names the package version and the checkout commit', () => {
    const b = buildInfo();
    expect(b.version).toBe(packageVersion());
    expect(b.commit).toMatch(/^[0-9a-f]{12}(-dirty)?$/);
    expect(b.id).toBe(`${b.version}+${b.commit}`);
  });

  it('a worker identity keeps the SDK default <pid>@<host> first and carries the build', () => {
    const id = workerIdentity(
      { version: '1.2.0', commit: 'abcdef123456', id: '1.2.0+abcdef123456' },
      42,
      'pod-a',
    );
    expect(id).toBe('42@pod-a dbops/1.2.0+abcdef123456');
    expect(buildOfIdentity(id)).toBe('1.2.0+abcdef123456');
    expect(buildOfIdentity('42@pod-a')).toBeUndefined();
  });
});

describe('dbops doctor: worker builds', () => {
  it('one build: ok, with the poller count', () => {
    const r = describeWorkerBuilds(['1@a dbops/1.0.0+aaa', '2@b dbops/1.0.0+aaa'], '1.0.0+aaa');
    expect(r.status).toBe('ok');
    expect(r.detail).toContain('worker build 1.0.0+aaa (2 pollers)');
  });

  it('two builds at once: a warning that names both and the upgrade guide', () => {
    const r = describeWorkerBuilds(['1@a dbops/1.0.0+aaa', '2@b dbops/1.1.0+bbb', '3@c'], '1.1.0+bbb');
    expect(r.status).toBe('warn');
    expect(r.detail).toContain('1.0.0+aaa (1 poller)');
    expect(r.detail).toContain('1.1.0+bbb (1 poller)');
    expect(r.detail).toContain('unnamed build');
    expect(r.detail).toContain('docs/upgrades.md');
  });
});
