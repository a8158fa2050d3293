import type { Client } from 'pg';
import { failure, FailureType } from '../../../common/failures';

/**
 * The advisory lock key Flyway 10 uses for a history table, so dbops and Flyway exclude each
 * other too: 77431708279161 + Java String.hashCode of `"schema"."table"`.
 */
export function flywayLockKey(schema: string, table: string): bigint {
  const name = `"${schema}"."${table}"`;
  let hash = 0;
  for (let i = 0; i < name.length; i++) hash = (Math.imul(hash, 31) + name.charCodeAt(i)) | 0;
  return 77431708279161n + BigInt(hash);
}

/**
 * Takes the session-level advisory lock on its own connection, by try-lock and poll: a blocking
 * pg_advisory_lock would sit in a transaction that CREATE INDEX CONCURRENTLY waits for.
 * Calls `onWait` while another migrator holds it; fails with TimedOut after `timeoutMs`.
 */
export async function acquireMigrationLock(
  client: Client,
  key: bigint,
  timeoutMs: number,
  onWait?: (waitedMs: number) => void,
): Promise<void> {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    const r = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [
      key.toString(),
    ]);
    if (r.rows[0]?.ok) return;
    const waited = Date.now() - started;
    if (waited >= timeoutMs) {
      throw failure(
        FailureType.TimedOut,
        `another migrator still holds the migration lock (advisory lock ${key}) after ${waited} ms; wait for it to finish or raise DBOPS_MIGRATION_LOCK_WAIT`,
      );
    }
    onWait?.(waited);
    await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** Math.min(attempt, 4), 1000)));
  }
}

export async function releaseMigrationLock(client: Client, key: bigint): Promise<void> {
  await client.query('SELECT pg_advisory_unlock($1::bigint)', [key.toString()]);
}
