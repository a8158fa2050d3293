import { createWriteStream } from 'node:fs';
import { access, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { FailureType, failure } from '../../../common/failures';
import {
  archivedSegments,
  isTimelineHistoryName,
  isWalSegmentName,
  nextWalSegment,
  segmentTimeline,
  parseWalArchiveKey,
  timelineHistoryKey,
  walPartialKey,
  walPartialSidecarKey,
  walSegmentKey,
  walSegmentSidecarKey,
  walTimelinePrefix,
  type WalPartialSidecar,
  type WalSegmentSidecar,
} from '../../../common/pitr';
import type { BackupStore } from '../../storage';
import { decompress, HashTap } from '../dump-pipeline';

/**
 * PostgreSQL's restore_command for a point-in-time recovery, fed by the worker (as pgBackRest's
 * asynchronous archive-get): the command (a small shell script, RESTORE_COMMAND_SCRIPT) asks for a
 * file by creating `want.<name>` in the queue folder and waits for `<name>` or `<name>.missing`.
 * The worker (WalFeed) reads each wanted segment from the store, decompresses it, checks its
 * SHA-256 against its sidecar (the archive is untrusted input) and renames it into the queue; it
 * fetches the next few segments ahead, so replay rarely waits. The recovering server therefore
 * needs no store credentials, and nothing it runs can reach the bucket.
 */
export const RESTORE_COMMAND_SCRIPT = `#!/bin/sh
# dbops point-in-time recovery: restore_command '<this> %f %p'. The dbops worker puts each WAL
# file PostgreSQL asks for into ./queue (checked against the archive's SHA-256) or marks it missing.
q="$(dirname "$0")/queue"
f="$1"
p="$2"
: > "$q/want.$f" || exit 1
i=0
while [ "$i" -lt 6000 ]; do
  if [ -f "$q/$f" ]; then
    cp "$q/$f" "$p" || exit 1
    rm -f "$q/$f" "$q/want.$f"
    exit 0
  fi
  if [ -f "$q/$f.missing" ]; then
    rm -f "$q/$f.missing" "$q/want.$f"
    exit 1
  fi
  sleep 0.05
  i=$((i + 1))
done
exit 1
`;

/** Segments fetched ahead of the one PostgreSQL asks for: 4 × 16 MiB on disk at most. */
const PREFETCH = 4;

export interface WalFeedStats {
  /** Files handed to PostgreSQL or fetched ahead. */
  readonly segmentsFetched: number;
  readonly bytesFetched: number;
  /** The last segment PostgreSQL asked for that the store has. */
  readonly lastServed: string | undefined;
  /** A segment PostgreSQL asked for that the store lacks, while a later one on its timeline exists. */
  readonly gap: string | undefined;
  /** The first segment asked for past the end of the archive (normal at the end of a recovery). */
  readonly endOfArchive: string | undefined;
  /**
   * The segment served from its partial upload (`<segment>.partial.zst`: the store lacked the
   * completed one and held no later one), and where its WAL ends: the last records the archiver
   * received, e.g. before a crash. PostgreSQL replays up to its last valid record.
   */
  readonly partial: { readonly segment: string; readonly receivedLsn: string } | undefined;
}

/** Reads of a partial whose object and sidecar disagree before it counts as damaged: the archiver replaces both about every second. */
const PARTIAL_READS = 5;

export class WalFeed {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private failed: Error | undefined;
  private readonly listed = new Map<string, Set<string>>();
  /** Segments with a partial upload, per timeline, from the same listing. */
  private readonly partials = new Map<string, Set<string>>();
  private stats: WalFeedStats = {
    segmentsFetched: 0,
    bytesFetched: 0,
    lastServed: undefined,
    gap: undefined,
    endOfArchive: undefined,
    partial: undefined,
  };

  constructor(
    private readonly store: BackupStore,
    private readonly systemId: string,
    /** The folder holding the script and its queue/ (the temporary server's own). */
    private readonly dir: string,
  ) {}

  get queue(): string {
    return path.join(this.dir, 'queue');
  }

  /** The restore_command setting for the temporary server. */
  get restoreCommand(): string {
    return `'${path.join(this.dir, 'restore-command.sh')}' %f %p`;
  }

  get current(): WalFeedStats {
    return this.stats;
  }

  /** Writes the script and the queue folder (before they are given to the server's user). */
  async prepare(): Promise<void> {
    await mkdir(this.queue, { recursive: true });
    await writeFile(path.join(this.dir, 'restore-command.sh'), RESTORE_COMMAND_SCRIPT, { mode: 0o755 });
  }

  /** Starts answering requests (every 50 ms); a failure to read the store stops the feed and is rethrown by check(). */
  start(): void {
    this.timer = setInterval(() => void this.tick(), 50);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    while (this.busy) await new Promise((r) => setTimeout(r, 20));
  }

  /** Rethrows what stopped the feed (an unreadable store, a segment whose SHA-256 does not match). */
  check(): void {
    if (this.failed) throw this.failed;
  }

  private async tick(): Promise<void> {
    if (this.busy || this.failed) return;
    this.busy = true;
    try {
      const wanted = (await readdir(this.queue)).filter((n) => n.startsWith('want.')).map((n) => n.slice(5));
      for (const name of wanted) await this.serve(name);
    } catch (err) {
      this.failed = err instanceof Error ? err : new Error(String(err));
    } finally {
      this.busy = false;
    }
  }

  private async serve(name: string): Promise<void> {
    if (await this.queued(name)) return; // fetched ahead: the script copies it
    if (isTimelineHistoryName(name)) {
      const stream = await this.store.get(timelineHistoryKey(this.systemId, name)).catch(() => undefined);
      if (!stream) return this.missing(name);
      await this.land(name, async (tmp) => pipeline(stream, createWriteStream(tmp)));
      return;
    }
    if (!isWalSegmentName(name)) return this.missing(name); // .backup, .partial: never archived
    if (!(await this.has(name))) {
      const timeline = segmentTimeline(name);
      const partials = this.partials.get(timeline) ?? new Set<string>();
      const later = [...(this.listed.get(timeline) ?? []), ...partials].some((s) => s > name);
      if (!later && partials.has(name)) return this.fetchPartial(name);
      if (later && !this.stats.gap) this.stats = { ...this.stats, gap: name };
      if (!later && !this.stats.endOfArchive) this.stats = { ...this.stats, endOfArchive: name };
      return this.missing(name);
    }
    await this.fetchSegment(name);
    this.stats = { ...this.stats, lastServed: name };
    let next = name;
    for (let i = 0; i < PREFETCH; i++) {
      next = nextWalSegment(next);
      if (await this.queued(next)) continue;
      if (!(await this.has(next, false))) break;
      await this.fetchSegment(next);
    }
  }

  /** Whether the store has the segment (its sidecar, written last, is its commit); lists its timeline once, again on a miss. */
  private async has(segment: string, relist = true): Promise<boolean> {
    const timeline = segmentTimeline(segment);
    if (!this.listed.has(timeline) || (relist && !this.listed.get(timeline)!.has(segment))) {
      const prefix = walTimelinePrefix(this.systemId, timeline);
      const keys = (await this.store.list(prefix)).map((o) => o.key.slice(prefix.length));
      this.listed.set(timeline, new Set(archivedSegments(keys)));
      const partials = keys.flatMap((k) => {
        const p = parseWalArchiveKey(k);
        return p?.partial && p.sidecar ? [p.segment] : [];
      });
      this.partials.set(timeline, new Set(partials));
    }
    return this.listed.get(timeline)!.has(segment);
  }

  private async fetchSegment(segment: string): Promise<void> {
    const sidecar = await this.store.getJson<WalSegmentSidecar>(walSegmentSidecarKey(this.systemId, segment));
    if (!sidecar) return this.missing(segment);
    const raw = new HashTap();
    await this.land(segment, async (tmp) => {
      const d = decompress('zstd', await this.store.get(walSegmentKey(this.systemId, segment)));
      await Promise.all([pipeline(d.stream, raw, createWriteStream(tmp)), d.done]);
    });
    if (raw.digest() !== sidecar.sha256 || raw.bytes !== sidecar.size) {
      await rm(path.join(this.queue, segment), { force: true });
      throw failure(
        FailureType.IntegrityCheckFailed,
        `archived WAL segment ${this.store.describe(walSegmentKey(this.systemId, segment))} decompresses to SHA-256 ${raw.digest()} (${raw.bytes} bytes), its sidecar records ${sidecar.sha256} (${sidecar.size} bytes): the archive is damaged; run \`dbops wal check\``,
      );
    }
    this.stats = {
      ...this.stats,
      segmentsFetched: this.stats.segmentsFetched + 1,
      bytesFetched: this.stats.bytesFetched + raw.bytes,
    };
  }

  /**
   * Serves `segment` from its partial upload, SHA-256 checked against its sidecar. The archiver may
   * replace both between our two reads (object first, sidecar last), so a mismatch is read again a
   * few times before it counts as damage; a partial gone meanwhile means its completed segment was
   * stored: that is served instead.
   */
  private async fetchPartial(segment: string): Promise<void> {
    let problem = '';
    for (let i = 0; i < PARTIAL_READS; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 300));
      const sidecar = await this.store.getJson<WalPartialSidecar>(
        walPartialSidecarKey(this.systemId, segment),
      );
      if (!sidecar) {
        if (await this.has(segment)) return this.fetchSegment(segment);
        return this.missing(segment);
      }
      const raw = new HashTap();
      try {
        await this.land(segment, async (tmp) => {
          const d = decompress('zstd', await this.store.get(walPartialKey(this.systemId, segment)));
          await Promise.all([pipeline(d.stream, raw, createWriteStream(tmp)), d.done]);
          if (raw.digest() !== sidecar.sha256 || raw.bytes !== sidecar.size)
            throw new Error(
              `decompresses to SHA-256 ${raw.digest()} (${raw.bytes} bytes), its sidecar records ${sidecar.sha256} (${sidecar.size} bytes)`,
            );
        });
      } catch (err) {
        problem = err instanceof Error ? err.message : String(err);
        continue;
      }
      this.stats = {
        ...this.stats,
        segmentsFetched: this.stats.segmentsFetched + 1,
        bytesFetched: this.stats.bytesFetched + raw.bytes,
        lastServed: segment,
        partial: { segment, receivedLsn: sidecar.receivedLsn },
      };
      return;
    }
    throw failure(
      FailureType.IntegrityCheckFailed,
      `the partial WAL segment ${this.store.describe(walPartialKey(this.systemId, segment))} ${problem} (read ${PARTIAL_READS} times): the archive is damaged; recover to an earlier point or run \`dbops wal check\``,
    );
  }

  /** Writes a file under a temporary name, then renames it into the queue: the script sees it whole or not at all. */
  private async land(name: string, write: (tmp: string) => Promise<unknown>): Promise<void> {
    const tmp = path.join(this.queue, `.tmp.${name}`);
    try {
      await write(tmp);
      await rename(tmp, path.join(this.queue, name));
    } finally {
      await rm(tmp, { force: true });
    }
  }

  private async queued(name: string): Promise<boolean> {
    return access(path.join(this.queue, name)).then(
      () => true,
      () => false,
    );
  }

  private async missing(name: string): Promise<void> {
    await writeFile(path.join(this.queue, `${name}.missing`), '');
    await rm(path.join(this.queue, `want.${name}`), { force: true });
  }
}
