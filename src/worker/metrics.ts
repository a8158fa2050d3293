import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { processLogger } from './logging';

/**
 * dbops' own Prometheus metrics (prom-client), served by the worker's HTTP server next to the
 * Temporal SDK's metrics. The operation series (runs, outcomes, durations) are in ./outcomes.ts.
 * The backup gauges here are computed at scrape time from two places, the newest backup winning:
 * what this worker recorded (the backups and verifications it ran, reported by ./outcomes.ts) and
 * every registered source (the backup store, ./backup-age.ts). So they survive a worker restart and
 * show backups another worker made, and the age keeps growing while no backup succeeds.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry });

const labelNames = ['database'] as const;

/** The newest backup of one database that passed verification, as a source knows it. */
export interface VerifiedBackup {
  kind: 'verified';
  database: string;
  /** When that backup was taken (its snapshot time): the age is measured from here. */
  takenAt: Date;
}
/** The newest complete backup of one database, as a source knows it (from its manifest). */
export interface FinishedBackup {
  kind: 'finished';
  database: string;
  /** When it was taken (its snapshot time): decides which backup is the newest. */
  takenAt: Date;
  finishedAt: Date;
  /** As stored (compressed). */
  sizeBytes: number;
  durationSeconds: number;
}
export type KnownBackup = VerifiedBackup | FinishedBackup;
/** Looks up the newest backups of each database (e.g. in the backup store); called on every scrape. */
export type BackupAgeSource = () => Promise<readonly KnownBackup[]> | readonly KnownBackup[];

const SOURCE_TIMEOUT_MS = 5_000;
const recordedVerified = new Map<string, number>();
const recordedFinished = new Map<string, FinishedBackup>();
const ageSources = new Set<BackupAgeSource>();

const sourceErrors = new Counter({
  name: 'dbops_backup_age_source_errors_total',
  help: 'Registered backup-age sources that failed or timed out during a scrape',
  registers: [registry],
});

/** Registers a source for the backup gauges; returns a function that removes it. */
export function registerBackupAgeSource(source: BackupAgeSource): () => void {
  ageSources.add(source);
  return () => ageSources.delete(source);
}

/** Records a backup that succeeded (its workflow's result); keeps the newest per database. */
export function recordBackupSuccess(backup: Omit<FinishedBackup, 'kind'>): void {
  const known = recordedFinished.get(backup.database);
  if (!known || backup.takenAt.getTime() >= known.takenAt.getTime()) {
    recordedFinished.set(backup.database, { kind: 'finished', ...backup });
  }
}

/** Records that the backup of `database` taken at `takenAt` passed verification; keeps the newest. */
export function recordBackupVerified(database: string, takenAt: Date): void {
  const ms = takenAt.getTime();
  if (ms > (recordedVerified.get(database) ?? -Infinity)) recordedVerified.set(database, ms);
}

async function fromSource(source: BackupAgeSource): Promise<readonly KnownBackup[]> {
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
    processLogger().warn('backup age source failed', {
      error: err instanceof Error ? err.message : String(err),
    });
    return [];
  } finally {
    clearTimeout(timer);
  }
}

interface NewestBackups {
  /** Taken time (ms) of the newest verified backup, per database. */
  verified: Map<string, number>;
  finished: Map<string, FinishedBackup>;
}

async function gather(): Promise<NewestBackups> {
  const verified = new Map(recordedVerified);
  const finished = new Map(recordedFinished);
  const lists = await Promise.all([...ageSources].map(fromSource));
  for (const backup of lists.flat()) {
    const ms = backup.takenAt.getTime();
    if (!Number.isFinite(ms)) continue;
    if (backup.kind === 'verified') {
      if (ms > (verified.get(backup.database) ?? -Infinity)) verified.set(backup.database, ms);
    } else if (ms > (finished.get(backup.database)?.takenAt.getTime() ?? -Infinity)) {
      // Strictly newer: for the same backup, what this worker recorded from its result stays.
      finished.set(backup.database, backup);
    }
  }
  return { verified, finished };
}

let gathering: Promise<NewestBackups> | undefined;
/** The gauges of one scrape collect at the same time: they share one look-up of the sources. */
function newestBackups(): Promise<NewestBackups> {
  gathering ??= gather().finally(() => {
    gathering = undefined;
  });
  return gathering;
}

/** Newest verified time per database, from recorded results and every registered source. */
export async function newestVerifiedByDatabase(): Promise<Map<string, number>> {
  return new Map((await newestBackups()).verified);
}

/** A gauge of the newest complete backup of each database, set at scrape time. */
function finishedBackupGauge(name: string, help: string, value: (b: FinishedBackup) => number): void {
  new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    async collect() {
      const { finished } = await newestBackups();
      this.reset();
      for (const [database, backup] of finished) this.set({ database }, value(backup));
    },
  });
}

finishedBackupGauge(
  'dbops_backup_last_success_timestamp_seconds',
  "Unix time the newest successful backup of the database finished (this worker's results and the backup store)",
  (b) => b.finishedAt.getTime() / 1000,
);
finishedBackupGauge(
  'dbops_backup_size_bytes',
  'Size in bytes of the newest successful backup of the database (as stored)',
  (b) => b.sizeBytes,
);
finishedBackupGauge(
  'dbops_backup_duration_seconds',
  'Wall-clock duration of the newest successful backup of the database',
  (b) => b.durationSeconds,
);

new Gauge({
  name: 'dbops_backup_newest_verified_age_seconds',
  help: 'Seconds since the newest verified backup of the database was taken (alert when > 26 h)',
  labelNames,
  registers: [registry],
  async collect() {
    const { verified } = await newestBackups();
    this.reset();
    const now = Date.now();
    for (const [database, ms] of verified) this.set({ database }, Math.max(0, (now - ms) / 1000));
  },
});

/** Forgets everything recorded and every source (tests). */
export function resetBackupMetrics(): void {
  recordedVerified.clear();
  recordedFinished.clear();
  ageSources.clear();
}
