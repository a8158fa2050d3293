import { type BackupVerification, manifestKey, parseBackupId, verificationKey } from '../../../common/backup';
import { FailureType, failure } from '../../../common/failures';
import { loadManifest, withBackupStore } from '../../storage';
import { checkStoredArchive } from '../archive-check';
import { checkedName } from './databases';
import { serverBinaries, type RestoreDeps } from './run';
import { extensionsIn, resolveBackup, type ResolvedBackup } from './source';
import { assertRestoreSpace } from './space';

export interface ArchiveCheck {
  readonly backupId: string;
  readonly sizeBytes: number;
  readonly sha256: string;
  readonly extensions: string[];
  readonly check: string;
  /** With `restoreInto`: the scratch folder's and the server's free space against what the restore needs. */
  readonly space?: string;
}

/** The backup side of a restore or verification: which backup, is its archive intact, and the verdict recorded beside it. */
export function createArchiveActivities(deps: RestoreDeps) {
  return {
    /** Resolves an id, `latest` or `latest-verified` to a complete backup (short). */
    async resolveRestoreBackup(input: { selector: string; database?: string }): Promise<ResolvedBackup> {
      if (input.database !== undefined) checkedName(input.database);
      return withBackupStore(deps.storage, (store) => resolveBackup(store, input.selector, input.database));
    },

    /**
     * Reads the whole archive once: size and SHA-256 against the manifest, decompression, and the
     * archive's table of contents (the backup's own re-read check). With `restoreInto` (the shadow
     * or scratch database the caller will restore into), first the space that restore needs.
     */
    async checkBackupArchive(input: { backupId: string; restoreInto?: string }): Promise<ArchiveCheck> {
      const manifest = await withBackupStore(deps.storage, (store) => loadManifest(store, input.backupId));
      const into = input.restoreInto === undefined ? undefined : checkedName(input.restoreInto);
      // Before reading a byte; a manifest from before the re-read check measured rawBytes (0) after.
      let space =
        into !== undefined && manifest.rawBytes > 0
          ? await assertRestoreSpace(deps, manifest, into)
          : undefined;
      const { bins } = await serverBinaries(deps.pg);
      const r = await checkStoredArchive(deps.storage, bins.path('pg_restore'), {
        database: manifest.database,
        backupId: manifest.id,
        file: manifest.file,
        format: manifest.format,
        compression: manifest.compression,
        sizeBytes: manifest.sizeBytes,
        sha256: manifest.sha256,
        ...(manifest.adopted && { adopted: manifest.adopted }),
      });
      // The scratch space was sized by the manifest's raw size: it must be what the archive holds.
      if (manifest.rawBytes > 0 && r.rawBytes !== manifest.rawBytes) {
        throw failure(
          FailureType.IntegrityCheckFailed,
          `backup ${manifest.id}: the archive decompresses to ${r.rawBytes} bytes, the manifest says ${manifest.rawBytes}`,
        );
      }
      if (into !== undefined && space === undefined)
        space = await assertRestoreSpace(deps, { ...manifest, rawBytes: r.rawBytes }, into);
      return {
        backupId: manifest.id,
        sizeBytes: manifest.sizeBytes,
        sha256: manifest.sha256,
        extensions: extensionsIn(r.head),
        check: r.checks,
        ...(space !== undefined && { space }),
      };
    },

    /** Writes verification.json beside the backup's manifest (what listing and retention read). */
    async recordBackupVerification(input: {
      backupId: string;
      verification: BackupVerification;
    }): Promise<void> {
      let database: string;
      try {
        database = parseBackupId(input.backupId).database;
      } catch (err) {
        throw failure(FailureType.InvalidInput, (err as Error).message);
      }
      // The manifest's presence, not its content: a manifest that fails its check is recorded as failed too.
      await withBackupStore(deps.storage, async (store) => {
        if (!(await store.head(manifestKey(database, input.backupId))))
          throw failure(FailureType.NotFound, `backup ${input.backupId} has no manifest: nothing to record`);
        await store.replaceJson(verificationKey(database, input.backupId), input.verification);
      });
    },
  };
}
