import type { BackupStore } from '../../activities/storage';
import { type BackupManifest, makeBackupId, manifestKey } from '../../common/backup';

/** The backup id of SAMPLE_MANIFEST. */
export const SAMPLE_ID = 'recsys_20261204_113951';

/** A manifest as the backup workflow writes it (a real one, from the dev stack). */
export const SAMPLE_MANIFEST: BackupManifest = {
  manifestVersion: 1,
  id: SAMPLE_ID,
  database: 'recsys',
  format: 'custom',
  compression: 'zstd',
  file: 'dump.pgcustom.zst',
  sizeBytes: 5822461,
  sha256: '4c5157430751cf599b04605f4be521d694ed4f0230cac6264de3de684011b161',
  rawBytes: 19797036,
  startedAt: '2026-12-04T11:39:51.516Z',
  finishedAt: '2026-12-04T11:39:52.377Z',
  durationMs: 861,
  serverVersion: '18.6',
  pgDumpVersion: '18.6',
  schemaVersion: '006',
  statistics: true,
  tables: [
    { schema: 'public', table: 'flyway_schema_history', kind: 'table', rows: 6 },
    { schema: 'public', table: 'user_behaviors', kind: 'partitioned', rows: 12 },
    { schema: 'public', table: 'user_behaviors_2026_12', kind: 'partition', rows: 12 },
  ],
  integrity: { checkedAt: '2026-12-04T11:39:52.377Z', checks: 'size 5822461 B + sha256' },
  workflowId: 'backup-recsys-20261204',
  runId: 'a-run',
};

/**
 * Writes a minimal manifest of database `shop` taken on November `day`, 2026 at 03:00 UTC (plus
 * `extra` fields) into `store`; returns the backup id.
 */
export async function putShopManifest(
  store: BackupStore,
  day: number,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const taken = new Date(Date.UTC(2026, 10, day, 3));
  const id = makeBackupId('shop', taken);
  await store.putJson(manifestKey('shop', id), {
    manifestVersion: 1,
    id,
    database: 'shop',
    startedAt: taken.toISOString(),
    ...extra,
  });
  return id;
}
