import { writeSync } from 'node:fs';
import type { FailpointAction, FailpointName } from '../common/failpoints';

/** The worker's failpoints (DBOPS_FAILPOINTS, set once at start by src/worker/create.ts). */
let active: ReadonlyMap<FailpointName, FailpointAction> = new Map();

export function setFailpoints(points: ReadonlyMap<FailpointName, FailpointAction>): void {
  active = points;
}

/**
 * Acts out the failpoint `name` when a drill set it, else returns at once. The line on stderr is
 * written synchronously, so the drill sees it even when the next instruction is the SIGKILL.
 */
export async function failpoint(name: FailpointName): Promise<void> {
  const action = active.get(name);
  if (!action) return;
  writeSync(2, `dbops failpoint ${name}: ${action.kind === 'crash' ? 'crash' : `pause ${action.ms} ms`}\n`);
  if (action.kind === 'crash') process.kill(process.pid, 'SIGKILL');
  else await new Promise((resolve) => setTimeout(resolve, action.ms));
}
