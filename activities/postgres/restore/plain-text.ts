/**
 * A plain dump's text as psql reads it, and the proof that psql's \restrict lock covers all of it
 * (restrict-scan.ts). A dbops backup is pg_dump's output as is. An adopted spec backup
 * (BackupManifest.adopted) first loses the pg_dump --verbose lines mixed into it
 * (verbose-filter.ts); one from a pg_dump older than the \restrict fix gets a lock of its own: a
 * `\restrict <key>` line before the script and `\unrestrict <key>` after it, the key fresh and
 * random for each read, so nothing in the file can lift it and psql refuses every backslash
 * command in it (COPY's `\.` ends data, not a command, and still works).
 */
import { randomBytes } from 'node:crypto';
import type { BackupManifest } from '../../../common/backup';
import { VerboseFilter } from '../verbose-filter';
import { RestrictScanner } from './restrict-scan';

const EMPTY = Buffer.alloc(0);

export class PlainDumpText {
  readonly filter: VerboseFilter | undefined;
  private readonly scanner = new RestrictScanner();
  private readonly lock: { begin: Buffer; end: Buffer } | undefined;
  /** Bytes read from the archive (before the filter): what the manifest's rawBytes counts. */
  rawBytes = 0;

  constructor(manifest: Pick<BackupManifest, 'adopted'>) {
    this.filter = manifest.adopted ? new VerboseFilter() : undefined;
    if (manifest.adopted?.restrictLock === 'added') {
      // Alphanumeric, as psql's \restrict takes it: 64 hex digits, as long as pg_dump's own keys.
      const key = randomBytes(32).toString('hex');
      this.lock = { begin: Buffer.from(`\\restrict ${key}\n`), end: Buffer.from(`\n\\unrestrict ${key}\n`) };
    }
  }

  /** What psql reads before the archive's first byte. */
  begin(): Buffer {
    return this.pass(this.lock?.begin ?? EMPTY);
  }

  /** The archive's next decompressed bytes, as psql reads them. */
  write(chunk: Buffer): Buffer {
    this.rawBytes += chunk.length;
    return this.pass(this.filter ? this.filter.write(chunk) : chunk);
  }

  /** What psql reads after the archive's last byte. */
  end(): Buffer {
    return this.pass(Buffer.concat([this.filter?.end() ?? EMPTY, this.lock?.end ?? EMPTY]));
  }

  /** After end(): why psql's lock does not cover the script, or undefined when it does. */
  problem(): string | undefined {
    return this.scanner.end();
  }

  private pass(text: Buffer): Buffer {
    this.scanner.write(text);
    return text;
  }
}
