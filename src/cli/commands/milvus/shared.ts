import { createMilvusActivities } from '../../../../activities/milvus';
import { DEFAULT_COLLECTION_NAMES, isValidCollectionName } from '../../../../activities/milvus/collections';
import { failure, FailureType } from '../../../../common/failures';
import type { Config } from '../../../config';

/** A `--collection` value, checked before anything connects. */
export function collectionName(name: string): string {
  if (!isValidCollectionName(name)) {
    throw failure(
      FailureType.InvalidInput,
      `"${name}" is not a Milvus collection name: use letters, digits and _ (starting with a letter or _)`,
    );
  }
  return name;
}

export const defaultCollections = () => [DEFAULT_COLLECTION_NAMES.items, DEFAULT_COLLECTION_NAMES.users];

/** The Milvus activities, called in this process (no workflow: each command is one short step). */
export function activities(config: Config) {
  return createMilvusActivities({ milvus: config.milvus, pg: config.pg });
}

/** `nlist=1024 nprobe=16`: index or search parameters on one line. */
export const paramsText = (params: Readonly<Record<string, number>>) =>
  Object.entries(params)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
