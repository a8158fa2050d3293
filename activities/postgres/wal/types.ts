import type { PgConnectionSettings } from '../connection';
import type { StorageSettings } from '../../storage';
import type { WalLag } from './lag';

/** What the archiver needs from the worker: the server, the store, its slot and spool (DBOPS_WAL_*). */
export interface WalDeps {
  readonly pg: PgConnectionSettings;
  readonly storage: StorageSettings;
  /** DBOPS_WAL_SLOT: the guard slot's name; pg_receivewal streams from `<slot>_recv` (./slots.ts). */
  readonly slot: string;
  /** DBOPS_WAL_SPOOL_DIR: pg_receivewal writes under `<dir>/<system id>/<slot>/`. */
  readonly spoolDir: string;
  /** The worker's lag gauges (src/worker/wal-metrics.ts); undefined clears them when a run ends. */
  readonly onLag?: (systemId: string, lag: WalLag | undefined) => void;
}

export interface WalArchiveInput {
  /** The cluster this archiver is for (workflow id `wal-archiver/<system id>`): another server is refused. */
  readonly systemId: string;
  /** The slot the archiver was started for: the worker's DBOPS_WAL_SLOT must be the same. */
  readonly slot: string;
  /** How long one activity run streams before it ends cleanly and the workflow starts the next (default 1 h). */
  readonly runForMs?: number;
  /** How often the spool is read and the server sampled (default 500 ms). */
  readonly pollMs?: number;
}

/** Something an operator must hear about; the workflow posts it to Slack and keeps archiving. */
export interface WalEvent {
  readonly kind: 'slot-lost' | 'timeline-switch' | 'gap';
  readonly message: string;
}

export interface WalArchiveResult {
  /** Segments stored by this run. */
  readonly archived: number;
  readonly lastSegment?: string;
  /** rotated: runForMs passed; slot-check: a slot went missing or lost, the next run recreates it. */
  readonly reason?: 'rotated' | 'slot-check';
  readonly event?: WalEvent;
}
