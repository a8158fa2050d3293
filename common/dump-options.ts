/**
 * pg_dump's owner and grant options, as a backup records them and a restore honours them.
 * Workflow-safe (no Node built-ins).
 */
import type { BackupManifest } from './backup';
import { InputError } from './names';

/**
 * What pg_dump leaves out (DBOPS_DUMP_NO_OWNER / DBOPS_DUMP_NO_PRIVILEGES): a dump without owners
 * and grants restores onto a cluster that lacks the roles (the spec's backup.sh dumped this way);
 * its objects then belong to the role that restores them.
 */
export interface DumpOptions {
  /** pg_dump --no-owner: no ALTER … OWNER TO (a restore must pass pg_restore --no-owner too). */
  readonly noOwner: boolean;
  /** pg_dump --no-privileges: no GRANT / REVOKE. */
  readonly noPrivileges: boolean;
}

/** Owners and grants dumped: the default, and what a manifest without `dumpOptions` means. */
export const FULL_DUMP: DumpOptions = { noOwner: false, noPrivileges: false };

/**
 * Dump options as a workflow or activity received them (from this client, an older one that sent
 * none, or a hand-written start): absent means FULL_DUMP; anything but a boolean is refused.
 */
export function parseDumpOptions(value: unknown): DumpOptions {
  if (value === undefined || value === null) return FULL_DUMP;
  if (typeof value !== 'object')
    throw new InputError(`dumpOptions must be { noOwner, noPrivileges }, not ${JSON.stringify(value)}`);
  const o = value as Record<string, unknown>;
  for (const [key, variable] of [
    ['noOwner', 'DBOPS_DUMP_NO_OWNER'],
    ['noPrivileges', 'DBOPS_DUMP_NO_PRIVILEGES'],
  ] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'boolean')
      throw new InputError(
        `dumpOptions.${key} must be true or false, not ${JSON.stringify(o[key])} (${variable} sets it)`,
      );
  }
  return { noOwner: o.noOwner === true, noPrivileges: o.noPrivileges === true };
}

/** The options a backup was dumped with (manifests written before the field mean FULL_DUMP). */
export const dumpOptionsOf = (manifest: Pick<BackupManifest, 'dumpOptions'>): DumpOptions =>
  manifest.dumpOptions ?? FULL_DUMP;

/**
 * The arguments that leave owners and grants out: pg_dump and pg_restore spell them alike. pg_dump
 * ignores --no-owner for the custom and directory formats (the archive keeps each owner), so a
 * restore of such an archive must pass them to pg_restore as well.
 */
export function dumpOptionArgs(options: DumpOptions): string[] {
  return [...(options.noOwner ? ['--no-owner'] : []), ...(options.noPrivileges ? ['--no-privileges'] : [])];
}
