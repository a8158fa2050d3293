import { parseBackupId } from '../../../common/backup';
import { parseDumpOptions } from '../../../common/dump-options';
import { FailureType, failure } from '../../../common/failures';
import { InputError } from '../../../common/names';
import { checkStoredArchive, type ArchiveCheckInput } from '../archive-check';
import { resolvePgBinaries } from '../binaries';
import { dumpToStore, type DumpDeps, type DumpInput, type DumpResult } from './session';

export type { DumpDeps, DumpInput, DumpResult } from './session';

/** The dump activities; they run on the `<taskQueue>-dumps` worker, which limits how many run at once. */
export function createDumpActivities(deps: DumpDeps) {
  return {
    /**
     * Dumps `database` in one snapshot, compresses, hashes and streams into the store under the
     * backup's folder. Idempotent: a retry overwrites the same key; nothing is visible on failure.
     */
    async dumpDatabase(input: DumpInput): Promise<DumpResult> {
      let parsed;
      try {
        parsed = parseBackupId(input.backupId);
        parseDumpOptions(input.dumpOptions);
      } catch (err) {
        if (err instanceof InputError) throw failure(FailureType.InvalidInput, err.message);
        throw err;
      }
      if (parsed.database !== input.database) {
        throw failure(
          FailureType.InvalidInput,
          `backup id ${input.backupId} does not belong to database ${input.database}`,
        );
      }
      return dumpToStore(deps, input);
    },

    /** Re-reads the stored archive and proves it intact (size, SHA-256, decodable to the end, readable by its tool). */
    async verifyBackupArchive(
      input: ArchiveCheckInput & { pgDumpVersion: string },
    ): Promise<{ checks: string; rawBytes: number }> {
      // pg_restore must be at least as new as the pg_dump that wrote the archive.
      const bins = await resolvePgBinaries(deps.pg.binDir, parseInt(input.pgDumpVersion, 10));
      const { checks, rawBytes } = await checkStoredArchive(deps.storage, bins.path('pg_restore'), input, {
        ciphertextWithoutIdentity: true,
      });
      return { checks, rawBytes };
    },
  };
}

export type DumpActivities = ReturnType<typeof createDumpActivities>;
