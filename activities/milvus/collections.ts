/**
 * The Milvus collections dbops manages, as data. Names are parameters so tests (one Milvus per
 * machine) can use unique names; production uses the defaults.
 */
export type ScalarType = 'VarChar' | 'Int64' | 'FloatVector';

export interface FieldSpec {
  readonly name: string;
  readonly type: ScalarType;
  readonly primaryKey?: boolean;
  readonly maxLength?: number;
  readonly dim?: number;
  readonly description: string;
}

export type CollectionKind = 'items' | 'users';

export interface CollectionSpec {
  readonly kind: CollectionKind;
  readonly name: string;
  readonly description: string;
  readonly consistency: 'Strong' | 'Bounded' | 'Session' | 'Eventually';
  readonly fields: readonly FieldSpec[];
  /** The primary key field, holding the PostgreSQL uuid as text. */
  readonly primaryKey: string;
  readonly vectorField: string;
}

export const DEFAULT_COLLECTION_NAMES: Readonly<Record<CollectionKind, string>> = {
  items: 'item_embeddings',
  users: 'user_embeddings',
};

export function itemEmbeddingsSpec(dim: number, name = DEFAULT_COLLECTION_NAMES.items): CollectionSpec {
  return {
    kind: 'items',
    name,
    description: 'Item embeddings for similarity search',
    consistency: 'Strong',
    primaryKey: 'item_id',
    vectorField: 'embedding',
    fields: [
      {
        name: 'item_id',
        type: 'VarChar',
        primaryKey: true,
        maxLength: 64,
        description: 'items.id (uuid text)',
      },
      { name: 'embedding', type: 'FloatVector', dim, description: 'item embedding' },
      { name: 'item_type', type: 'VarChar', maxLength: 32, description: 'items.type' },
      { name: 'created_at', type: 'Int64', description: 'epoch milliseconds' },
    ],
  };
}

export function userEmbeddingsSpec(dim: number, name = DEFAULT_COLLECTION_NAMES.users): CollectionSpec {
  return {
    kind: 'users',
    name,
    description: 'User embeddings for personalization',
    // The spec left this at the server default (Bounded); user vectors are read right after
    // being written by the training pipeline, so Strong like items.
    consistency: 'Strong',
    primaryKey: 'user_id',
    vectorField: 'embedding',
    fields: [
      {
        name: 'user_id',
        type: 'VarChar',
        primaryKey: true,
        maxLength: 64,
        description: 'users.id (uuid text)',
      },
      { name: 'embedding', type: 'FloatVector', dim, description: 'user embedding' },
      { name: 'updated_at', type: 'Int64', description: 'epoch milliseconds' },
    ],
  };
}

export interface CollectionNames {
  readonly items?: string;
  readonly users?: string;
}

export function collectionSpecs(dim: number, names: CollectionNames = {}): CollectionSpec[] {
  return [itemEmbeddingsSpec(dim, names.items), userEmbeddingsSpec(dim, names.users)];
}

/** Milvus collection names: letters, digits, underscore, starting with a letter or underscore, ≤ 255. */
export function isValidCollectionName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]{0,254}$/.test(name);
}
