import { createArchiveActivities } from './archive';
import { createCutOverActivities } from './cutover';
import type { RestoreDeps } from './run';
import { createShadowActivities } from './shadow';
import { createVerifyActivities } from './verify';

export type { RestoreDeps } from './run';
export type { ArchiveCheck } from './archive';
export type { ResolvedBackup } from './source';

/**
 * Restore and verification activities, one module per step of the runbook: the backup's archive
 * (resolve, check, record a verification), the shadow or scratch database (restore into it, drop
 * it), its verification (compare with the manifest, ANALYZE), and the cut-over (the target as it
 * is, the swap, the rollback). workflows/restore/, verify.ts and restore-rollback.ts proxy
 * RestoreActivities.
 */
export function createRestoreActivities(deps: RestoreDeps) {
  return {
    ...createArchiveActivities(deps),
    ...createShadowActivities(deps),
    ...createVerifyActivities(deps),
    ...createCutOverActivities(deps),
  };
}

export type RestoreActivities = ReturnType<typeof createRestoreActivities>;
