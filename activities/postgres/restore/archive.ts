import { type BackupVerification, verificationKey } from '../../../common/backup';
import { loadManifest, withBackupStore } from '../../storage';
import { checkStoredArchive } from '../archive-check';
import { checkedName } from './databases';
import { serverBinaries, type RestoreDeps } from './run';
import { extensionsIn, resolveBackup, type ResolvedBackup } from './source';

export interface ArchiveCheck {
  readonly backupId: string;
  readonly sizeBytes: number;
  readonly sha256: string;
  readonly extensions: string[];
  readonly check: string;
}

/** The backup side of a restore or verification: which backup, is its archive intact, and the verdict recorded beside it. */
export function createArchiveActivities(deps: RestoreDeps) {
  return {
    /** Resolves an id, `latest` or `latest-verified` to a complete backup (short). */
    async resolveRestoreBackup(input: { selector: string; database?: string }): Promise<ResolvedBackup> {
      if (input.database !== undefined) checkedName(input.database);
      return withBackupStore(deps.storage, (store) => resolveBackup(store, input.selector, input.database));
    },

    /** Reads the whole archive once: size and SHA-256 against the manifest, decompression, and the archive's table of contents (the backup's own re-read check). */
    async checkBackupArchive(input: { backupId: string }): Promise<ArchiveCheck> {
      const manifest = await withBackupStore(deps.storage, (store) => loadManifest(store, input.backupId));
      const { bins } = await serverBinaries(deps.pg);
      const r = await checkStoredArchive(deps.storage, bins.path('pg_restore'), {
        database: manifest.database,
        backupId: manifest.id,
        file: manifest.file,
        format: manifest.format,
        compression: manifest.compression,
        sizeBytes: manifest.sizeBytes,
        sha256: manifest.sha256,
      });
      return {
        backupId: manifest.id,
        sizeBytes: manifest.sizeBytes,
        sha256: manifest.sha256,
        extensions: extensionsIn(r.head),
        check: r.checks,
      };
    },

    /** Writes verification.json beside the backup's manifest (what listing and retention read). */
    async recordBackupVerification(input: {
      backupId: string;
      verification: BackupVerification;
    }): Promise<void> {
      await withBackupStore(deps.storage, async (store) => {
        const manifest = await loadManifest(store, input.backupId);
        await store.replaceJson(verificationKey(manifest.database, manifest.id), input.verification);
      });
    },
  };
}
