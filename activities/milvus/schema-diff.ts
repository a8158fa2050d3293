import type { CollectionSpec } from './collections';

/** A field as Milvus describes it (subset of the SDK's FieldSchema). */
export interface LiveField {
  readonly name: string;
  readonly data_type: string;
  readonly is_primary_key?: boolean;
  readonly is_dynamic?: boolean;
  readonly autoID?: boolean;
  readonly type_params?: readonly { key: string; value: string | number }[];
}

export interface FieldDifference {
  readonly field: string;
  readonly property: 'presence' | 'type' | 'dim' | 'max_length' | 'primary_key' | 'auto_id' | 'consistency';
  readonly expected: string;
  readonly actual: string;
}

function typeParam(field: LiveField, key: string): string | undefined {
  const value = field.type_params?.find((p) => p.key === key)?.value;
  return value === undefined ? undefined : String(value);
}

/** Field-by-field differences between a live collection and its spec; empty means it matches. */
export function diffSchema(
  spec: CollectionSpec,
  live: { fields: readonly LiveField[]; consistency?: string },
): FieldDifference[] {
  const diffs: FieldDifference[] = [];
  const liveFields = live.fields.filter((f) => !f.is_dynamic);
  const byName = new Map(liveFields.map((f) => [f.name, f]));
  for (const want of spec.fields) {
    const got = byName.get(want.name);
    if (!got) {
      diffs.push({
        field: want.name,
        property: 'presence',
        expected: `present (${want.type})`,
        actual: 'missing',
      });
      continue;
    }
    if (got.data_type !== want.type) {
      diffs.push({ field: want.name, property: 'type', expected: want.type, actual: got.data_type });
    }
    if (want.dim !== undefined && typeParam(got, 'dim') !== String(want.dim)) {
      diffs.push({
        field: want.name,
        property: 'dim',
        expected: String(want.dim),
        actual: typeParam(got, 'dim') ?? 'none',
      });
    }
    if (want.maxLength !== undefined && typeParam(got, 'max_length') !== String(want.maxLength)) {
      diffs.push({
        field: want.name,
        property: 'max_length',
        expected: String(want.maxLength),
        actual: typeParam(got, 'max_length') ?? 'none',
      });
    }
    if (Boolean(want.primaryKey) !== Boolean(got.is_primary_key)) {
      diffs.push({
        field: want.name,
        property: 'primary_key',
        expected: String(Boolean(want.primaryKey)),
        actual: String(Boolean(got.is_primary_key)),
      });
    }
    if (want.primaryKey && got.autoID) {
      diffs.push({ field: want.name, property: 'auto_id', expected: 'false', actual: 'true' });
    }
  }
  const specNames = new Set(spec.fields.map((f) => f.name));
  for (const extra of liveFields.filter((f) => !specNames.has(f.name))) {
    diffs.push({
      field: extra.name,
      property: 'presence',
      expected: 'absent',
      actual: `present (${extra.data_type})`,
    });
  }
  if (live.consistency !== undefined && live.consistency !== spec.consistency) {
    diffs.push({
      field: '(collection)',
      property: 'consistency',
      expected: spec.consistency,
      actual: live.consistency,
    });
  }
  return diffs;
}

export function formatDiff(d: FieldDifference): string {
  return `${d.field}: ${d.property} expected ${d.expected}, found ${d.actual}`;
}
