import { upsertSearchAttributes } from '@temporalio/workflow';
import { unlistedTargetProblem } from '../../common/approvals';
import { FailureType, failure } from '../../common/failures';
import { InputError } from '../../common/names';
import {
  type RestorePlan,
  assertRestoreTarget,
  estimateRestoreSeconds,
  planHash,
  preRestoreDatabaseName,
  restoreSteps,
  shadowDatabaseName,
} from '../../common/restore';
import { DBOPS_BACKUP_ID, DBOPS_DATABASE, DBOPS_OPERATION } from '../../common/search-attributes';
import type { Planned, RestoreRun } from './run';

/** Runs a name check: its InputError becomes the workflow's non-retryable InvalidInput failure. */
export function checkNames<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof InputError) throw failure(FailureType.InvalidInput, err.message);
    throw err;
  }
}

/** A named target that may never be replaced (postgres, template0/1) or whose derived names do not fit: InvalidInput. */
export function refuseSystemTarget(target: string | undefined): void {
  if (target !== undefined) checkNames(() => assertRestoreTarget(target));
}

/** 1. Plan: resolve and check the backup, describe the target, hash the plan. Changes nothing. */
export async function planRestore(run: RestoreRun): Promise<Planned> {
  const { input } = run;
  const resolved = await run.short(`resolve backup ${input.backup}`).resolveRestoreBackup({
    selector: input.backup,
    database: input.database ?? input.target,
  });
  const manifest = resolved.manifest;
  const target = input.target ?? manifest.database;
  const now = new Date(run.started);
  const [shadow, preRestore] = checkNames(() => {
    assertRestoreTarget(target);
    return [shadowDatabaseName(target, now), preRestoreDatabaseName(target, now)];
  });
  const unlisted = unlistedTargetProblem(target, run.worker, input.allowUnlistedTarget);
  if (unlisted) throw failure(FailureType.Refused, unlisted);
  run.phase('checking', { backupId: manifest.id, target });
  // Search attributes exist on servers set up by dbops (the starter sets DbopsOperation); test servers may lack them.
  if (run.info.typedSearchAttributes.get(DBOPS_OPERATION) !== undefined) {
    upsertSearchAttributes([
      { key: DBOPS_BACKUP_ID, value: manifest.id },
      { key: DBOPS_DATABASE, value: target },
    ]);
  }
  const archive = await run
    .streaming(`check archive of ${manifest.id} (size, SHA-256, readability)`)
    .checkBackupArchive({ backupId: manifest.id, restoreInto: shadow });
  run.phase('planning');
  const targetInfo = await run.short(`describe ${target}`).describeDatabase({ name: target });
  const base = {
    target,
    targetExists: targetInfo.exists,
    targetSizeBytes: targetInfo.sizeBytes,
    backupId: manifest.id,
    backupDatabase: manifest.database,
    backupTakenAt: manifest.startedAt,
    format: manifest.format,
    compression: manifest.compression,
    sizeBytes: manifest.sizeBytes,
    rawBytes: manifest.rawBytes,
    sha256: manifest.sha256,
    schemaVersion: manifest.schemaVersion,
    tables: resolved.tables,
    rows: resolved.rows,
    extensions: archive.extensions,
    verified: resolved.verification,
    shadowDatabase: shadow,
    preRestoreDatabase: preRestore,
    keepDays: run.policy.keepDays,
    jobs: input.jobs,
  };
  const plan: RestorePlan = {
    ...base,
    steps: restoreSteps(base),
    estimatedSeconds: estimateRestoreSeconds(Math.max(manifest.rawBytes, manifest.sizeBytes), input.jobs),
  };
  const hash = planHash(plan);
  run.status = { ...run.status, plan, planHash: hash };
  return { plan, hash };
}
