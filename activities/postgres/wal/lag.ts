/**
 * How long ago the server first had WAL beyond a position: the archiver samples the server's
 * current LSN every poll, and the lag in seconds of a position is the age of the first sample past
 * it. Precise to the poll interval, and meaningful when PostgreSQL's own flush_lag is NULL (idle)
 * or does not apply (the store, which PostgreSQL knows nothing about).
 */
export class LsnHistory {
  private readonly samples: { t: number; lsn: number }[] = [];

  constructor(private readonly keepMs = 3_600_000) {}

  add(t: number, lsn: number): void {
    const last = this.samples.at(-1);
    if (last && last.lsn === lsn) return; // only changes matter: the first time past a position
    this.samples.push({ t, lsn });
    // Keep one sample older than the window: it bounds the lag of positions before the window.
    while (this.samples.length > 2 && this.samples[1]!.t < t - this.keepMs) this.samples.shift();
  }

  /** Seconds since WAL beyond `position` first appeared; 0 when the server is not past it. */
  lagSeconds(position: number, now: number): number {
    const firstPast = this.samples.find((s) => s.lsn > position);
    return firstPast === undefined ? 0 : Math.max(0, (now - firstPast.t) / 1000);
  }
}

/** The archive's distance from the server, in bytes and seconds, at two stages. */
export interface WalLag {
  readonly systemId: string;
  readonly currentLsn: string;
  /** Flushed by pg_receivewal into the spool (the worker's disk). */
  readonly receivedLsn: string | null;
  readonly receivedLagBytes: number | null;
  readonly receivedLagSeconds: number | null;
  /** Everything before this is in the store (the guard slot's position). */
  readonly storedLsn: string | null;
  readonly storedLagBytes: number | null;
  readonly storedLagSeconds: number | null;
  readonly at: string;
}
