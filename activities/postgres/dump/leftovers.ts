import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { backupFolderKey } from '../../../common/backup';
import type { BackupStore } from '../../storage';

/**
 * Leftovers of other backups are swept once they are this old: no attempt still writes them (the
 * streaming profile ends an attempt after 6 hours), and the workflow of a killed backup that was
 * then terminated never cleans up after itself.
 */
const STALE_MS = 24 * 3600_000;

/** The directory format's scratch folder of one backup attempt: `<this><backup id>-<random>`. */
export const SCRATCH_PREFIX = 'dbops-dump-';

/**
 * Removes what killed dump attempts left, before this attempt writes anything. A worker that was
 * SIGKILLed (or OOM-killed, or lost with its node) never aborts its S3 multipart upload, removes
 * its temporary file in the backup folder, or its scratch folder; its retry does, here.
 *
 * The store is swept by key prefix, not by an upload id recorded in heartbeat details: a kill
 * between starting the upload and the next heartbeat would leave an id nobody recorded. Everything
 * under this backup's folder goes: the backup id is this workflow's, so no other writer is there
 * (a zombie attempt still writing fails instead of completing). Under the database's other
 * folders, and in the scratch base folder, only day-old leftovers go: those of a backup that was
 * terminated after its worker died. The backup workflow's failure path sweeps its folder too
 * (discardIncompleteBackup).
 */
export async function sweepDumpLeftovers(
  store: BackupStore,
  input: { database: string; backupId: string },
  scratchBase: string,
): Promise<void> {
  const staleBefore = new Date(Date.now() - STALE_MS);
  const own = await store.sweepInterrupted(backupFolderKey(input.database, input.backupId));
  const stale = await store.sweepInterrupted(`${input.database}/`, staleBefore);
  const scratch = await sweepScratch(scratchBase, input.backupId, staleBefore);
  if (own + stale + scratch > 0) {
    Context.current().log.info('removed interrupted writes of killed backup attempts', {
      backupId: input.backupId,
      ownFolder: own,
      olderThanADay: stale,
      scratchFolders: scratch,
    });
  }
}

/** Scratch folders of earlier attempts of this backup, and day-old ones of any backup. */
async function sweepScratch(base: string, backupId: string, staleBefore: Date): Promise<number> {
  const names = await readdir(base).catch(() => [] as string[]);
  let swept = 0;
  for (const name of names.filter((n) => n.startsWith(SCRATCH_PREFIX))) {
    const folder = path.join(base, name);
    const s = await stat(folder).catch(() => undefined);
    if (!s?.isDirectory()) continue;
    if (!name.startsWith(`${SCRATCH_PREFIX}${backupId}-`) && s.mtime >= staleBefore) continue;
    await rm(folder, { recursive: true, force: true });
    swept++;
  }
  return swept;
}
