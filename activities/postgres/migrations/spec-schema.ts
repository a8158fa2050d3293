/**
 * The one definition of "a database the spec's migrations built" and of what taking it over
 * changes. The spec ships V001__initial_schema.sql and V002__add_user_behaviors.sql (it names
 * V003–V005 but gives no SQL for them); Flyway recorded them with the checksums below, computed
 * by flywayChecksum() over the spec's scripts exactly as given (test/fixtures/spec-migrations/,
 * whose test recomputes them).
 */

/** A history row the spec's Flyway run wrote, and the dbops migration it corresponds to. */
export interface SpecScript {
  readonly version: string;
  readonly description: string;
  readonly script: string;
  /** flywayChecksum() of the spec's script as given. */
  readonly specChecksum: number;
  /** flywayChecksum() of dbops' released file of the same name (migrations/), which the takeover brings the schema to. */
  readonly dbopsChecksum: number;
}

export const SPEC_SCRIPTS: readonly SpecScript[] = [
  {
    version: '001',
    description: 'initial schema',
    script: 'V001__initial_schema.sql',
    specChecksum: -631856383,
    dbopsChecksum: -1864311120,
  },
  {
    version: '002',
    description: 'add user behaviors',
    script: 'V002__add_user_behaviors.sql',
    specChecksum: -718252923,
    dbopsChecksum: 11802171,
  },
];

/**
 * The history row that records the takeover: a BASELINE row (as `flyway baseline` writes, checksum
 * null) between the spec's V002 and dbops' V003. Flyway 10 and dbops show it as "Baseline" and
 * validate it; the spec's rows keep their installed_on and installed_by.
 */
export const TAKEOVER_ROW = {
  version: '002.1',
  description: '<< dbops: spec V001, V002 taken over >>',
  type: 'BASELINE',
} as const;

/**
 * Spec objects dbops' V001/V002 do not have, dropped by the takeover:
 * - idx_users_email duplicates the index of the UNIQUE constraint users_email_key;
 * - create_behavior_partition() is a trigger function no trigger uses (as a BEFORE INSERT row
 *   trigger it could not create the partition its own row needs); dbops creates partitions ahead
 *   with ensure_behavior_partitions().
 */
export const SPEC_ONLY_DROPS: readonly string[] = [
  'DROP INDEX IF EXISTS idx_users_email',
  'DROP FUNCTION IF EXISTS create_behavior_partition()',
];

/** The spec's trigger function, named for the check that no trigger still uses it. */
export const SPEC_PARTITION_TRIGGER_FUNCTION = 'create_behavior_partition()';

/**
 * The statements of dbops' V002 the spec's V002 lacks, found in the released file by their start,
 * run in file order: the DEFAULT partition, ensure_behavior_partitions() and its first call
 * (12 months back to 3 ahead). Everything else in dbops' V001/V002 the spec already has.
 */
export const DBOPS_V002_ADDITIONS: readonly RegExp[] = [
  /^CREATE TABLE user_behaviors_default PARTITION OF user_behaviors DEFAULT$/,
  /^CREATE OR REPLACE FUNCTION ensure_behavior_partitions\(/,
  /^SELECT count\(\*\) AS partitions_created\s+FROM ensure_behavior_partitions\(/,
];

/** The DEFAULT partition dbops' V002 creates (an existing one under another name is refused). */
export const DEFAULT_PARTITION = 'user_behaviors_default';
