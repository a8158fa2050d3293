import { accessSync, constants, readFileSync } from 'node:fs';
import { failure, FailureType } from '../common/failures';

/**
 * TLS material named by a setting (PGSSL*, DBOPS_TEMPORAL_TLS_*, DBOPS_MILVUS_TLS_*): one
 * definition of how a missing or unreadable file is reported, naming the variable and the fix.
 */
function unreadable(variable: string, file: string, err: unknown) {
  return failure(
    FailureType.Misconfigured,
    `${variable}=${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)}): mount the PEM file there or fix ${variable}`,
  );
}

/** The file's bytes, for clients that take PEM contents (the pg driver, Temporal's connections). */
export function readTlsFile(variable: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw unreadable(variable, file, err);
  }
}

/** Fails unless the file is readable, for clients that read it themselves by path (Milvus SDK, libpq tools). */
export function assertTlsFileReadable(variable: string, file: string): void {
  try {
    accessSync(file, constants.R_OK);
  } catch (err) {
    throw unreadable(variable, file, err);
  }
}
