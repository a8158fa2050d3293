/**
 * An adopted spec backup arrives without row counts (its dump was never counted). The first
 * restore of it (a verification's scratch database, or a restore's shadow) counts them: the
 * manifest is written again with the tables and schema version of the restored database, which is
 * exactly the dump's content, and every later restore and verification is compared with them.
 */
import type { Client } from 'pg';
import { uncounted } from '../../../common/adopted';
import { type BackupManifest, type TableRowCount, manifestKey } from '../../../common/backup';
import type { BackupStore } from '../../storage';
import { manifestToWrite } from '../../storage/manifest';
import type { DatabaseFacts } from './databases';

/** The manifest with the restored database's counts; `manifest` itself when it has counts already. */
export async function withCounts(
  c: Client,
  manifest: BackupManifest,
  facts: DatabaseFacts,
  countedBy: string,
): Promise<BackupManifest> {
  if (!uncounted(manifest)) return manifest;
  const tables: TableRowCount[] = [];
  for (const [name, t] of facts.tables) {
    const dot = name.indexOf('.');
    const [schema, table] = [name.slice(0, dot), name.slice(dot + 1)];
    const kind = t.kind as TableRowCount['kind'];
    // A partitioned parent counts what its leaves hold (what SELECT count(*) on it returns).
    const rows = kind === 'partitioned' ? await leafRows(c, schema, table, facts) : t.rows;
    tables.push({ schema, table, kind, rows });
  }
  return {
    ...manifest,
    tables,
    schemaVersion: facts.schemaVersion,
    adopted: { ...manifest.adopted!, countedAt: new Date().toISOString(), countedBy },
  };
}

async function leafRows(c: Client, schema: string, table: string, facts: DatabaseFacts): Promise<number> {
  const leaves = await c.query<{ schema: string; table: string }>(
    `SELECT n.nspname AS schema, k.relname AS table
       FROM pg_partition_tree(format('%I.%I', $1::text, $2::text)::regclass) p
       JOIN pg_class k ON k.oid = p.relid JOIN pg_namespace n ON n.oid = k.relnamespace
      WHERE p.isleaf`,
    [schema, table],
  );
  return leaves.rows.reduce(
    (sum, l) => sum + Math.max(0, facts.tables.get(`${l.schema}.${l.table}`)?.rows ?? 0),
    0,
  );
}

/** Writes the counted manifest (signed when the store has a manifest key) over the uncounted one. */
export async function saveCounts(store: BackupStore, counted: BackupManifest): Promise<void> {
  await store.replaceJson(manifestKey(counted.database, counted.id), manifestToWrite(store, counted));
}
