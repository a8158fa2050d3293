import net from 'node:net';
import { Runtime } from '@temporalio/worker';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * dbops' own Prometheus metrics (prom-client), served by the worker's HTTP server next to the
 * Temporal SDK's metrics. Backup code records results with the `record*` functions; the age of the
 * newest verified backup is computed at scrape time, so it keeps growing while no backup succeeds.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry });

const labelNames = ['database'] as const;

const lastSuccess = new Gauge({
  name: 'dbops_backup_last_success_timestamp_seconds',
  help: 'Unix time the last successful backup of the database finished',
  labelNames,
  registers: [registry],
});
const sizeBytes = new Gauge({
  name: 'dbops_backup_size_bytes',
  help: 'Size in bytes of the last successful backup of the database (as stored)',
  labelNames,
  registers: [registry],
});
const durationSeconds = new Gauge({
  name: 'dbops_backup_duration_seconds',
  help: 'Wall-clock duration of the last successful backup of the database',
  labelNames,
  registers: [registry],
});
const sourceErrors = new Counter({
  name: 'dbops_backup_age_source_errors_total',
  help: 'Registered backup-age sources that failed or timed out during a scrape',
  registers: [registry],
});

/** The newest backup of one database that passed verification, as a source knows it. */
export interface VerifiedBackup {
  database: string;
  /** When that backup was taken (its snapshot time): the age is measured from here. */
  takenAt: Date;
}
/** Looks up newest verified backups (e.g. from the backup catalog); called on every scrape. */
export type BackupAgeSource = () => Promise<readonly VerifiedBackup[]> | readonly VerifiedBackup[];

const SOURCE_TIMEOUT_MS = 5_000;
const recordedVerified = new Map<string, number>();
const ageSources = new Set<BackupAgeSource>();

/** Registers a source for the age gauge; returns a function that removes it. */
export function registerBackupAgeSource(source: BackupAgeSource): () => void {
  ageSources.add(source);
  return () => ageSources.delete(source);
}

export function recordBackupSuccess(result: {
  database: string;
  sizeBytes: number;
  durationSeconds: number;
  finishedAt?: Date;
}): void {
  const labels = { database: result.database };
  lastSuccess.set(labels, (result.finishedAt ?? new Date()).getTime() / 1000);
  sizeBytes.set(labels, result.sizeBytes);
  durationSeconds.set(labels, result.durationSeconds);
}

/** Records that the backup of `database` taken at `takenAt` passed verification; keeps the newest. */
export function recordBackupVerified(database: string, takenAt: Date): void {
  const ms = takenAt.getTime();
  if (ms > (recordedVerified.get(database) ?? -Infinity)) recordedVerified.set(database, ms);
}

async function fromSource(source: BackupAgeSource): Promise<readonly VerifiedBackup[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`backup age source took over ${SOURCE_TIMEOUT_MS} ms`)),
      SOURCE_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([Promise.resolve(source()), timeout]);
  } catch (err) {
    sourceErrors.inc();
    console.error(
      `dbops metrics: backup age source failed: ${err instanceof Error ? err.message : String(err)}`,
    );
    return [];
  } finally {
    clearTimeout(timer);
  }
}

/** Newest verified time per database, from recorded results and every registered source. */
export async function newestVerifiedByDatabase(): Promise<Map<string, number>> {
  const newest = new Map(recordedVerified);
  const lists = await Promise.all([...ageSources].map(fromSource));
  for (const { database, takenAt } of lists.flat()) {
    const ms = takenAt.getTime();
    if (Number.isFinite(ms) && ms > (newest.get(database) ?? -Infinity)) newest.set(database, ms);
  }
  return newest;
}

new Gauge({
  name: 'dbops_backup_newest_verified_age_seconds',
  help: 'Seconds since the newest verified backup of the database was taken (alert when > 26 h)',
  labelNames,
  registers: [registry],
  async collect() {
    this.reset();
    const now = Date.now();
    for (const [database, ms] of await newestVerifiedByDatabase()) {
      this.set({ database }, Math.max(0, (now - ms) / 1000));
    }
  },
});

/** Forgets everything recorded (tests). */
export function resetBackupMetrics(): void {
  recordedVerified.clear();
  ageSources.clear();
  lastSuccess.reset();
  sizeBytes.reset();
  durationSeconds.reset();
}

/**
 * Installs the Temporal Runtime with its Prometheus exporter on a private loopback port and returns
 * that exporter's URL; the worker's /metrics merges it, so Prometheus scrapes one endpoint. Must run
 * before the first Temporal connection of the process is made.
 */
export async function installTemporalTelemetry(): Promise<string> {
  const bindAddress = `127.0.0.1:${await freeLoopbackPort()}`;
  Runtime.install({ telemetryOptions: { metrics: { prometheus: { bindAddress } } } });
  return `http://${bindAddress}/metrics`;
}

/** A free TCP port on 127.0.0.1 for the Temporal core's own Prometheus exporter. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
