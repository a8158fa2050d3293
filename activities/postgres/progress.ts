import { CancelledFailure, Context } from '@temporalio/activity';

/**
 * Runs `fn` inside an activity with heartbeats carrying `progress()` (one at once, then every
 * `everyMs`) and a list of kill functions, run on cancellation and again at the end, so no child
 * process outlives its activity. Once the activity is cancelled, whatever error the killed children
 * caused is reported as the cancellation (`cancelled` is its message).
 */
export async function withProgress<T>(
  options: { readonly everyMs: number; readonly cancelled: string },
  progress: () => Record<string, unknown>,
  fn: (kills: (() => void)[]) => Promise<T>,
): Promise<T> {
  const ctx = Context.current();
  const kills: (() => void)[] = [];
  const onCancel = () => kills.forEach((k) => k());
  ctx.cancellationSignal.addEventListener('abort', onCancel);
  const beat = setInterval(() => ctx.heartbeat(progress()), options.everyMs);
  ctx.heartbeat(progress());
  try {
    return await fn(kills);
  } catch (err) {
    if (ctx.cancellationSignal.aborted) throw new CancelledFailure(options.cancelled);
    throw err;
  } finally {
    clearInterval(beat);
    ctx.cancellationSignal.removeEventListener('abort', onCancel);
    onCancel();
  }
}
