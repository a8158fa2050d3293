import { buildOfIdentity } from '../build-info';

/**
 * What `dbops doctor` says about the workers polling the task queue: which builds they run (each
 * worker names its build in its identity, src/build-info.ts). Two builds at once is an upgrade
 * under way (a rolling update) or an old pod that never went away: running workflows continue on
 * whichever worker takes their next task, which patched() makes safe (docs/upgrades.md).
 */
export function describeWorkerBuilds(
  identities: readonly string[],
  cliBuild: string,
): { status: 'ok' | 'warn'; detail: string } {
  const byBuild = new Map<string, number>();
  for (const identity of identities) {
    const build = buildOfIdentity(identity) ?? 'unnamed build (a worker older than build ids)';
    byBuild.set(build, (byBuild.get(build) ?? 0) + 1);
  }
  const builds = [...byBuild].map(([build, n]) => `${build} (${n} poller${n === 1 ? '' : 's'})`).join(', ');
  const detail = `${identities.length} poller(s): ${identities.join(', ')}; worker build ${builds}; this CLI ${cliBuild}`;
  if (byBuild.size > 1) {
    return {
      status: 'warn',
      detail: `${detail}. Two builds are polling: an upgrade under way, or old workers still running (see docs/upgrades.md)`,
    };
  }
  return { status: 'ok', detail };
}
