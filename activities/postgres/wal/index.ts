import { archiveWal } from './archive';
import type { WalArchiveInput, WalArchiveResult, WalDeps } from './types';

export type { WalArchiveInput, WalArchiveResult, WalDeps, WalEvent } from './types';
export type { WalLag } from './lag';
export { checkWalArchive, verifySegment, type WalCheckReport, type WalTimelineReport } from './check';
export { lastArchivedSegment, walServerStatus, type WalServerStatus } from './status';
export { dropSlot, serverWal, walSlots, MAX_WAL_SLOT_NAME } from './slots';
export { spoolDir } from './archive';

/**
 * Continuous WAL archiving (issue 20): pg_receivewal streams into a spool, each completed segment
 * goes into the store (zstd, SHA-256, sidecar) under pitr/<system id>/wal/ (common/pitr.ts).
 */
export function createWalActivities(deps: WalDeps) {
  return {
    /**
     * Archives until cancelled, `runForMs` passes or an event needs telling (workflows/wal-archiver.ts
     * loops on it). Long-running: heartbeats progress and lag; a retry resumes from the slots.
     */
    async archiveWal(input: WalArchiveInput): Promise<WalArchiveResult> {
      return archiveWal(deps, input);
    },
  };
}

export type WalActivities = ReturnType<typeof createWalActivities>;
