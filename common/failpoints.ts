/**
 * Failpoints: named places in activities where a fault drill (test/drills/) makes the worker crash
 * or stall at an exact moment, as etcd's gofail or TiKV's fail-rs do. A drill cannot otherwise hit
 * a window of a few milliseconds (between blocking connections and the rename of a cut-over, say)
 * with a real SIGKILL. Set only through DBOPS_FAILPOINTS, which production never sets; the worker
 * warns at start when it is set. One list: config validation and the activities both use it.
 */
export const FAILPOINTS = [
  /** The cut-over has committed ALLOW_CONNECTIONS false on the target; the renames have not run. */
  'restore.cutover.after-block',
  /** The cut-over's renaming transaction has committed; the activity has not returned. */
  'restore.cutover.after-swap',
  /** The test restore of a verification has loaded the archive; the counts have not been compared. */
  'verify.before-compare',
  /** A restore or verification has checked its scratch folder's free space; nothing is decompressed yet. */
  'restore.before-decompress',
] as const;

export type FailpointName = (typeof FAILPOINTS)[number];

/** `crash`: SIGKILL the worker process itself; `pause`: stall there for `ms`, then go on. */
export type FailpointAction = { kind: 'crash' } | { kind: 'pause'; ms: number };

/** Parses `name=crash` or `name=pause:<ms>`; undefined when the text is not one. */
export function parseFailpoint(text: string): [FailpointName, FailpointAction] | undefined {
  const m = /^([a-z.-]+)=(crash|pause:(\d+))$/.exec(text.trim());
  if (!m || !(FAILPOINTS as readonly string[]).includes(m[1]!)) return undefined;
  const action: FailpointAction = m[2] === 'crash' ? { kind: 'crash' } : { kind: 'pause', ms: Number(m[3]) };
  return [m[1] as FailpointName, action];
}
