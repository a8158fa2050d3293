/**
 * The manifest as a schema: a manifest is read from a store that others can write to, so every
 * field is checked (type, range, shape) and anything unknown or missing refuses it, before any of
 * it picks an archive, a database or a decoder. Activities only: zod stays out of the workflow
 * bundle (workflows build manifests from the BackupManifest type in common/backup.ts).
 */
import { z } from 'zod';
import {
  BACKUP_COMPRESSIONS,
  BACKUP_FORMATS,
  type BackupManifest,
  manifestMismatch,
} from '../../common/backup';

/** Larger is not a manifest dbops wrote (one of 100 000 tables is about 8 MB): refused unread. */
export const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

const count = z.int().nonnegative();
const timestamp = z.iso.datetime();
const name = z.string().min(1).max(1000);

const tableRowCount = z.strictObject({
  schema: name,
  table: name,
  kind: z.enum(['table', 'partition', 'partitioned']),
  rows: count,
});

export const manifestSignatureSchema = z.strictObject({
  alg: z.literal('ed25519'),
  keyId: z.string().regex(/^[0-9a-f]{16}$/, 'expected 16 lowercase hex digits'),
  // 64 bytes in base64: 86 characters and "==".
  value: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'expected a base64 Ed25519 signature (88 characters)'),
});

export const backupManifestSchema = z.strictObject({
  manifestVersion: z.literal(1),
  id: z.string(),
  database: z.string(),
  format: z.enum(BACKUP_FORMATS),
  compression: z.enum(BACKUP_COMPRESSIONS),
  file: z.string(),
  sizeBytes: count,
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits'),
  rawBytes: count,
  startedAt: timestamp,
  finishedAt: timestamp,
  durationMs: count,
  serverVersion: z.string().max(100),
  pgDumpVersion: z.string().max(100),
  schemaVersion: z.string().max(100).nullable(),
  statistics: z.boolean().optional(),
  // Absent in manifests from before the option: owners and grants were dumped.
  dumpOptions: z.strictObject({ noOwner: z.boolean(), noPrivileges: z.boolean() }).optional(),
  tables: z.array(tableRowCount),
  integrity: z.strictObject({ checkedAt: timestamp, checks: z.string().max(10_000) }),
  encryption: z
    .strictObject({
      alg: z.literal('age'),
      recipients: z
        .array(z.string().regex(/^[0-9a-f]{16}$/, 'expected 16 lowercase hex digits'))
        .min(1)
        .max(100),
    })
    .optional(),
  adopted: z
    .strictObject({
      source: z.string().min(1).max(2000),
      adoptedAt: timestamp,
      verboseLines: count,
      restrictLock: z.enum(['own', 'added']),
      countedAt: timestamp.optional(),
      countedBy: z.string().max(1000).optional(),
    })
    .optional(),
  workflowId: z.string().max(1000).optional(),
  runId: z.string().max(1000).optional(),
  signature: manifestSignatureSchema.optional(),
});

// The schema and the BackupManifest type must describe the same object: a field added to one and
// not the other fails to compile here.
type Parsed = z.infer<typeof backupManifestSchema>;
type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false;
const sameShape: SameKeys<Parsed, BackupManifest> = true;
const asManifest = (m: Parsed): BackupManifest => m;
void sameShape;

/** `tables[3].rows`, `integrity.checkedAt`, or `(top level)`. */
function fieldPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`))
    .join('');
}

/** Whether `value` has the field at `path` at all (absent, as opposed to mistyped). */
function present(value: unknown, path: readonly PropertyKey[]): boolean {
  let at: unknown = value;
  for (const key of path) {
    if (typeof at !== 'object' || at === null || !Object.hasOwn(at, key)) return false;
    at = (at as Record<PropertyKey, unknown>)[key];
  }
  return true;
}

/** One line per problem, naming the field: what is wrong with it. */
function describeIssues(value: unknown, issues: readonly z.core.$ZodIssue[]): string {
  const lines = issues.slice(0, 5).map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      const where = issue.path.length ? ` in ${fieldPath(issue.path)}` : '';
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}${where}`;
    }
    const missing = issue.code === 'invalid_type' && !present(value, issue.path);
    return `field ${fieldPath(issue.path)}: ${missing ? `missing (expected ${issue.expected})` : issue.message}`;
  });
  if (issues.length > 5) lines.push(`and ${issues.length - 5} more`);
  return lines.join('; ');
}

/**
 * The manifest of backup `backupId` from parsed JSON, or why it is not one: a field the schema
 * refuses (named), or manifestMismatch's id, database and file rules. `{ problem }` is a sentence
 * continuing "<manifest location> ...".
 */
export function parseManifest(
  value: unknown,
  backupId: string,
): { manifest: BackupManifest } | { problem: string } {
  const parsed = backupManifestSchema.safeParse(value);
  if (!parsed.success)
    return { problem: `is not a dbops manifest: ${describeIssues(value, parsed.error.issues)}` };
  const manifest = asManifest(parsed.data);
  const mismatch = manifestMismatch(manifest, backupId);
  return mismatch ? { problem: mismatch } : { manifest };
}
