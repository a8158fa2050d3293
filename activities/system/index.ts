import os from 'node:os';

/** Activities about the worker itself. */
export function createSystemActivities(deps: { identity: string }) {
  return {
    async describeWorker(): Promise<{ identity: string; hostname: string; pid: number }> {
      return { identity: deps.identity, hostname: os.hostname(), pid: process.pid };
    },
  };
}
