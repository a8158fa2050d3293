import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * The search attributes an operator filters runs by in the Web UI. Every namespace dbops runs in
 * needs them registered as Keyword: the dev stack does it for its namespaces (src/stack/namespaces.ts),
 * production once by hand (README, Production).
 */
export const DBOPS_OPERATION = defineSearchAttributeKey('DbopsOperation', SearchAttributeType.KEYWORD);
export const DBOPS_DATABASE = defineSearchAttributeKey('DbopsDatabase', SearchAttributeType.KEYWORD);
export const DBOPS_BACKUP_ID = defineSearchAttributeKey('DbopsBackupId', SearchAttributeType.KEYWORD);

/** Where a restore is (RestorePhase): `DbopsPhase = "awaiting-approval"` lists the restores waiting for a decision. */
export const DBOPS_PHASE = defineSearchAttributeKey('DbopsPhase', SearchAttributeType.KEYWORD);

export const DBOPS_SEARCH_ATTRIBUTES = [
  DBOPS_OPERATION,
  DBOPS_DATABASE,
  DBOPS_BACKUP_ID,
  DBOPS_PHASE,
] as const;
