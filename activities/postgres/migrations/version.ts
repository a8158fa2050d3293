/** Flyway migration versions: parts split on `.` (or `_` in file names), compared numerically; "1.0" equals "1". */
export interface MigrationVersion {
  /** As Flyway stores it: the file's version with `_` turned into `.` (leading zeros kept, "001"). */
  readonly text: string;
  readonly parts: readonly bigint[];
}

export function parseVersion(raw: string): MigrationVersion | undefined {
  const text = raw.replace(/_/g, '.');
  if (!/^\d+(\.\d+)*$/.test(text)) return undefined;
  const parts = text.split('.').map((p) => BigInt(p));
  while (parts.length > 1 && parts[parts.length - 1] === 0n) parts.pop();
  return { text, parts };
}

export function compareVersions(a: MigrationVersion, b: MigrationVersion): number {
  const n = Math.max(a.parts.length, b.parts.length);
  for (let i = 0; i < n; i++) {
    const x = a.parts[i] ?? 0n;
    const y = b.parts[i] ?? 0n;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

export function sameVersion(a: MigrationVersion, b: MigrationVersion): boolean {
  return compareVersions(a, b) === 0;
}
