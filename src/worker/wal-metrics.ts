import { Gauge } from 'prom-client';
import type { WalLag } from '../../activities/postgres/wal';
import { registry } from './metrics';

/**
 * The WAL archiver's lag (issue 20's recovery point), from the archiving activity running on this
 * worker (activities/postgres/wal/archive.ts samples the server every poll). `stage`: `received`
 * is what pg_receivewal has flushed to the spool, `stored` what the backup store holds. At scrape
 * time the seconds grow by the sample's age: an archiver that stopped sampling (its activity
 * failed, the server is down) shows a lag that keeps rising instead of its last good value. A clean
 * stop (`dbops wal stop`) removes the series.
 */
const latest = new Map<string, WalLag>();

/** The activity's report (src/worker/activities.ts wires it): a sample, or undefined when it stopped. */
export function recordWalLag(systemId: string, lag: WalLag | undefined): void {
  if (lag) latest.set(systemId, lag);
  else latest.delete(systemId);
}

const labelNames = ['system_identifier', 'stage'] as const;
const stages: readonly (readonly [
  string,
  (l: WalLag) => { bytes: number | null; seconds: number | null },
])[] = [
  ['received', (l) => ({ bytes: l.receivedLagBytes, seconds: l.receivedLagSeconds })],
  ['stored', (l) => ({ bytes: l.storedLagBytes, seconds: l.storedLagSeconds })],
];

new Gauge({
  name: 'dbops_wal_archive_lag_bytes',
  help: 'Bytes of WAL the server wrote that the archiver has not yet received (stage=received) or stored (stage=stored)',
  labelNames,
  registers: [registry],
  collect() {
    this.reset();
    for (const [systemId, lag] of latest)
      for (const [stage, pick] of stages) {
        const { bytes } = pick(lag);
        if (bytes !== null) this.set({ system_identifier: systemId, stage }, bytes);
      }
  },
});

new Gauge({
  name: 'dbops_wal_archive_lag_seconds',
  help: 'Seconds since the server first wrote WAL the archiver has not yet received (stage=received) or stored (stage=stored)',
  labelNames,
  registers: [registry],
  collect() {
    this.reset();
    const now = Date.now();
    for (const [systemId, lag] of latest) {
      const age = Math.max(0, (now - Date.parse(lag.at)) / 1000);
      for (const [stage, pick] of stages) {
        const { seconds } = pick(lag);
        if (seconds !== null) this.set({ system_identifier: systemId, stage }, seconds + age);
      }
    }
  },
});

/** Forgets every sample (tests). */
export function resetWalMetrics(): void {
  latest.clear();
}
