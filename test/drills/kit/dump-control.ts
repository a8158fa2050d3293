/**
 * Holding a real backup mid-dump for the drills: a dump of a few dozen MB finishes in a second or
 * two, faster than a drill can observe it under way. pg_dump (a child of a worker process, found
 * by process-group.ts's waitForTool) is run in short SIGCONT/SIGSTOP steps until the store shows
 * the dump under way (an S3 multipart upload with parts, a temporary file with bytes): then it
 * stays stopped, and the drill SIGKILLs the worker with the dump genuinely half written. Signals
 * to real processes and real observation of the store: no failpoint, nothing faked.
 */
import { ListMultipartUploadsCommand, ListPartsCommand, S3Client } from '@aws-sdk/client-s3';
import type { WorkflowHandle } from '@temporalio/client';
import { Client } from 'pg';
import { pgClientConfig } from '../../../activities/postgres/connection';
import type { Config } from '../../../src/config';
import { signal } from './process-group';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Stops `pid` (pg_dump), then lets it run `stepMs` at a time until `underWay()` holds (checked
 * while it is stopped, after the pipeline drained for `settleMs`); it stays stopped then. Fails
 * when pg_dump exits first: the database is too small to be caught mid-dump.
 */
export async function holdDumpWhen(
  pid: number,
  underWay: () => Promise<boolean>,
  opts: { stepMs?: number; settleMs?: number; timeoutMs?: number } = {},
): Promise<void> {
  const { stepMs = 5, settleMs = 200, timeoutMs = 60_000 } = opts;
  const until = Date.now() + timeoutMs;
  if (!signal(pid, 'SIGSTOP')) throw new Error(`pg_dump ${pid} exited before it could be held`);
  for (;;) {
    await sleep(settleMs);
    if (await underWay()) return;
    if (Date.now() > until) throw new Error(`the dump was not observed under way within ${timeoutMs} ms`);
    if (!signal(pid, 'SIGCONT')) throw new Error(`pg_dump ${pid} exited before the dump was seen under way`);
    await sleep(stepMs);
    if (!signal(pid, 'SIGSTOP'))
      throw new Error(`pg_dump ${pid} finished before the dump was seen under way: use a bigger database`);
  }
}

/**
 * Adds table `noise` of about `mib` MiB of random bytes to `database`: incompressible, so the
 * compressed archive is about that big (S3 multipart needs more than one 8 MiB part).
 */
export async function addIncompressibleTable(config: Config, database: string, mib: number): Promise<void> {
  const c = new Client(pgClientConfig(config.pg, database));
  await c.connect();
  try {
    await c.query(`CREATE TABLE noise (id int PRIMARY KEY, data bytea NOT NULL)`);
    // 64 md5 digests of random input per row: 1 KiB of random bytes, stored uncompressed.
    await c.query(
      `INSERT INTO noise SELECT g, (SELECT decode(string_agg(md5(random()::text || g || i), ''), 'hex')
         FROM generate_series(1, 64) i) FROM generate_series(1, $1::int) g`,
      [mib * 1024],
    );
  } finally {
    await c.end();
  }
}

/** Multipart uploads open under `prefix` of the store's bucket and prefix, with their parts' bytes. */
export async function openMultipartUploads(
  storage: Config['storage'],
  prefix = '',
): Promise<{ key: string; uploadId: string; partBytes: number }[]> {
  if (storage.kind !== 's3') throw new Error('openMultipartUploads needs S3 storage');
  const s3 = new S3Client({
    region: storage.region,
    endpoint: storage.endpoint,
    forcePathStyle: storage.forcePathStyle,
  });
  try {
    const root = storage.prefix ? `${storage.prefix}/` : '';
    const r = await s3.send(
      new ListMultipartUploadsCommand({ Bucket: storage.bucket, Prefix: `${root}${prefix}` }),
    );
    const out = [];
    for (const u of r.Uploads ?? []) {
      const parts = await s3
        .send(new ListPartsCommand({ Bucket: storage.bucket, Key: u.Key, UploadId: u.UploadId }))
        .catch(() => ({ Parts: [] }));
      out.push({
        key: u.Key!.slice(root.length),
        uploadId: u.UploadId!,
        partBytes: (parts.Parts ?? []).reduce((n, p) => n + (p.Size ?? 0), 0),
      });
    }
    return out;
  } finally {
    s3.destroy();
  }
}

/** The backup's dumpDatabase activity as its history tells it: last attempt, the worker that ran it, how it ended. */
export async function dumpActivityOf(
  handle: Pick<WorkflowHandle, 'fetchHistory'>,
): Promise<{ scheduled: number; attempt: number; identity: string; completed: number; failed: number }> {
  const events = (await handle.fetchHistory()).events ?? [];
  const ids = events
    .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'dumpDatabase')
    .map((e) => String(e.eventId));
  const of = (id: unknown) => ids.includes(String(id));
  const started = events.find((e) => of(e.activityTaskStartedEventAttributes?.scheduledEventId));
  return {
    scheduled: ids.length,
    attempt: started?.activityTaskStartedEventAttributes?.attempt ?? 0,
    identity: started?.activityTaskStartedEventAttributes?.identity ?? '',
    completed: events.filter((e) => of(e.activityTaskCompletedEventAttributes?.scheduledEventId)).length,
    failed: events.filter((e) => of(e.activityTaskFailedEventAttributes?.scheduledEventId)).length,
  };
}
