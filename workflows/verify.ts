import { CancellationScope, isCancellation, log, sleep, workflowInfo } from '@temporalio/workflow';
import type { RestoreActivities } from '../activities/postgres';
import { parseBackupId } from '../common/backup';
import { FailureType, failure, failureTypeOf, rootMessage } from '../common/failures';
import { InputError } from '../common/names';
import {
  type VerifyWorkflowInput,
  type VerifyWorkflowResult,
  verifyScratchDatabaseName,
} from '../common/restore';
import { humanDuration, plural } from '../common/text';
import { activitiesWith } from './activity-profiles';
import { withBackupHold } from './backup-hold';

/**
 * Failures that are evidence about the backup, the only ones recorded as "failed": its bytes
 * (IntegrityCheckFailed), what they restore to (VerificationFailed), or a restore tool refusing its
 * content (ProcessFailed: a tool stopped by a lost server, a full disk or the OOM killer fails
 * Unavailable instead, see activities/postgres/restore/run.ts).
 */
const VERDICT_TYPES: readonly string[] = [
  FailureType.IntegrityCheckFailed,
  FailureType.VerificationFailed,
  FailureType.ProcessFailed,
];

/** Failures that end the verification at once: the backup is gone or the request is wrong. */
const FINAL_TYPES: readonly string[] = [FailureType.InvalidInput, FailureType.NotFound];

/**
 * Anything else (PostgreSQL restarted or unreachable, scratch space full, a missing binary) says
 * nothing about the backup: the test restore is tried again later, up to this many times in all,
 * and then the verification ends "could not verify" with the backup's record untouched.
 */
const DEFAULT_ROUNDS = 4;
const DEFAULT_ROUND_DELAY_MS = 30 * 60_000;

type Verdict = { status: 'passed' | 'failed'; detail: string };
type Activities = (profile: 'short' | 'streaming', summary: string) => RestoreActivities;

/**
 * Proves a backup restores: check the archive, restore it into a scratch database, compare with
 * the manifest (tables, exact row counts, schema version, extensions, valid indexes), drop the
 * scratch database, and record verification.json beside the backup. The backup is held against
 * retention meanwhile. A round that ends without a verdict is retried after a durable timer; when
 * none gives one, the workflow fails Unavailable ("could not verify") and records nothing.
 */
export async function verifyBackupWorkflow(input: VerifyWorkflowInput): Promise<VerifyWorkflowResult> {
  const started = Date.now();
  const retry = input.maximumAttempts ? { retry: { maximumAttempts: input.maximumAttempts } } : {};
  const act: Activities = (profile, summary) =>
    activitiesWith<RestoreActivities>(profile, { summary, ...retry });
  let scratch: string;
  try {
    scratch = verifyScratchDatabaseName(parseBackupId(input.backupId).database, new Date(started));
  } catch (err) {
    if (err instanceof InputError) throw failure(FailureType.InvalidInput, err.message);
    throw err;
  }
  const { backupId } = input;
  const rounds = Math.max(1, input.rounds ?? DEFAULT_ROUNDS);
  const delayMs = input.roundDelayMs ?? DEFAULT_ROUND_DELAY_MS;
  const hold = { backupId, reason: 'verification by a test restore', ttlMs: rounds * delayMs, ...retry };
  return withBackupHold(hold, async () => {
    for (let round = 1; ; round++) {
      const outcome = await testRestore(act, backupId, scratch, input.jobs ?? 2);
      const result = (status: VerifyWorkflowResult['status'], detail: string): VerifyWorkflowResult => ({
        backupId,
        status,
        detail,
        scratchDatabase: scratch,
        durationMs: Date.now() - started,
      });
      if ('status' in outcome) return record(act, result(outcome.status, outcome.detail));
      const why = rootMessage(outcome.unverified);
      if (round >= rounds) {
        const detail = `${plural(rounds, 'test restore')} ${rounds > 1 ? `${humanDuration(delayMs)} apart ` : ''}ended without a verdict; last: ${why}`;
        throw failure(
          FailureType.Unavailable,
          `could not verify backup ${backupId}: ${detail}. Its recorded status is unchanged; run "dbops verify ${backupId}" once the cause is fixed`,
          result('could-not-verify', detail),
        );
      }
      log.warn('test restore ended without a verdict; trying again later', { backupId, round, error: why });
      await sleep(delayMs);
    }
  });
}

/** One test restore: a verdict on the backup, or the failure that prevented one. Drops the scratch database. */
async function testRestore(
  act: Activities,
  backupId: string,
  scratch: string,
  jobs: number,
): Promise<Verdict | { unverified: unknown }> {
  try {
    const archive = await act('streaming', `check archive of ${backupId}`).checkBackupArchive({
      backupId,
      restoreInto: scratch,
    });
    await act('streaming', `restore ${backupId} into ${scratch}`).restoreBackupInto({
      backupId,
      database: scratch,
      jobs,
    });
    const v = await act('streaming', `compare ${scratch} with the manifest`).verifyRestoredDatabase({
      database: scratch,
      backupId,
      extensions: archive.extensions,
    });
    return {
      status: 'passed',
      detail: `${archive.check}; restored ${v.tables} tables, ${v.rows} rows: ${v.checks}`,
    };
  } catch (err) {
    const type = failureTypeOf(err) ?? '';
    if (VERDICT_TYPES.includes(type)) return { status: 'failed', detail: rootMessage(err) };
    if (isCancellation(err) || FINAL_TYPES.includes(type)) throw err;
    return { unverified: err };
  } finally {
    await CancellationScope.nonCancellable(() => dropScratch(act, scratch));
  }
}

/** Writes verification.json (a verdict only); a failed verdict fails the workflow VerificationFailed. */
async function record(act: Activities, result: VerifyWorkflowResult): Promise<VerifyWorkflowResult> {
  const { backupId, detail } = result;
  const status = result.status === 'passed' ? 'passed' : 'failed';
  await act('short', `record verification of ${backupId}`).recordBackupVerification({
    backupId,
    verification: {
      status,
      detail,
      checkedAt: new Date(Date.now()).toISOString(),
      workflowId: workflowInfo().workflowId,
    },
  });
  if (status === 'failed') {
    throw failure(
      FailureType.VerificationFailed,
      `backup ${backupId} failed verification: ${detail}`,
      result,
    );
  }
  return result;
}

async function dropScratch(act: Activities, scratch: string): Promise<void> {
  try {
    await act('short', `drop scratch ${scratch}`).dropRestoreDatabase({ name: scratch });
  } catch (err) {
    log.error('could not drop the scratch database; `dbops db cleanup` removes it', {
      scratch,
      error: rootMessage(err),
    });
  }
}
