import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'pg';
import { pgClientConfig } from '../../activities/postgres/connection';
import { ArchiveFormatError, fillCustomArchiveOffsets } from '../../activities/postgres/custom-archive';
import { testConfig, uniqueSuffix } from '../helpers/stack';
import { dropDatabase, pgTool } from './backup-helpers';

const config = testConfig();
const suffix = uniqueSuffix();
const db = `t_carch_${suffix}`;
const restored = `t_carch_r_${suffix}`;
let dir: string;

/** Position of the last byte in which two equally long buffers differ (-1 if equal). */
function lastDifference(a: Buffer, b: Buffer): number {
  for (let i = a.length - 1; i >= 0; i--) if (a[i] !== b[i]) return i;
  return -1;
}

describe('filling in the data offsets of a custom archive pg_dump wrote to a pipe', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'dbops-carch-'));
    pgTool(config, 'createdb', [db]);
    const c = new Client(pgClientConfig(config.pg, db));
    await c.connect();
    try {
      await c.query(`
        CREATE TABLE small (id int PRIMARY KEY, note text);
        INSERT INTO small SELECT g, 'row ' || g FROM generate_series(1, 500) g;
        CREATE TABLE big (id bigint PRIMARY KEY, payload text, created timestamptz DEFAULT now());
        INSERT INTO big SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 60000) g;
        CREATE TABLE empty_one (id int);
        CREATE TABLE parted (id int, at date) PARTITION BY RANGE (at);
        CREATE TABLE parted_a PARTITION OF parted FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
        CREATE TABLE parted_b PARTITION OF parted FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
        INSERT INTO parted SELECT g, date '2026-01-01' + (g % 50) FROM generate_series(1, 3000) g;
        SELECT lo_from_bytea(0, convert_to(repeat('large object ', 5000), 'UTF8'));`);
    } finally {
      await c.end();
    }
  });

  afterAll(async () => {
    await dropDatabase(config, db);
    await dropDatabase(config, restored);
    await rm(dir, { recursive: true, force: true });
  });

  it('makes the piped archive identical to the one pg_dump writes to a file, and restores in parallel', async () => {
    const piped = path.join(dir, 'piped.pgcustom');
    const seekable = path.join(dir, 'file.pgcustom');
    // Same snapshot is not needed: nothing writes to the database between the two dumps.
    await writeFile(piped, pgTool(config, 'pg_dump', ['-Fc', '-Z0', '-d', db]));
    pgTool(config, 'pg_dump', ['-Fc', '-Z0', '-d', db, '-f', seekable]);
    const before = await readFile(piped);

    const r = await fillCustomArchiveOffsets(piped);
    // small, big, empty_one, parted_a, parted_b, the large-object blob block and its metadata have data.
    expect(r.alreadySet).toBe(0);
    expect(r.filled).toBeGreaterThanOrEqual(6);
    expect(r.blocksScanned).toBe(r.filled);

    const after = await readFile(piped);
    const reference = await readFile(seekable);
    expect(after.length).toBe(reference.length);
    // Only the header's creation time may differ from pg_dump's own seekable output.
    expect(lastDifference(after, reference)).toBeLessThan(40);
    expect(lastDifference(before, after)).toBeGreaterThan(40);

    const again = await fillCustomArchiveOffsets(piped);
    expect(again).toMatchObject({ alreadySet: r.filled, filled: 0, blocksScanned: 0 });

    pgTool(config, 'createdb', [restored]);
    pgTool(config, 'pg_restore', ['--exit-on-error', '-j', '2', '-d', restored, piped]);
    const c = new Client(pgClientConfig(config.pg, restored));
    await c.connect();
    try {
      const counts = await c.query<{ small: string; big: string; parted: string; lo: string }>(
        `SELECT (SELECT count(*) FROM small) AS small, (SELECT count(*) FROM big) AS big,
                (SELECT count(*) FROM parted) AS parted, (SELECT count(*) FROM pg_largeobject_metadata) AS lo`,
      );
      expect(counts.rows[0]).toEqual({ small: '500', big: '60000', parted: '3000', lo: '1' });
    } finally {
      await c.end();
    }
  });

  it('refuses what is not a custom archive, naming the problem, and leaves it unchanged', async () => {
    const notArchive = path.join(dir, 'not.pgcustom');
    await writeFile(notArchive, 'SELECT 1;\n'.repeat(10));
    await expect(fillCustomArchiveOffsets(notArchive)).rejects.toThrow(ArchiveFormatError);
    await expect(fillCustomArchiveOffsets(notArchive)).rejects.toThrow(/no PGDMP signature/);
    expect(await readFile(notArchive, 'utf8')).toBe('SELECT 1;\n'.repeat(10));

    const truncated = path.join(dir, 'truncated.pgcustom');
    const whole = pgTool(config, 'pg_dump', ['-Fc', '-Z0', '-d', db]);
    await writeFile(truncated, whole.subarray(0, whole.length - 5000));
    await expect(fillCustomArchiveOffsets(truncated)).rejects.toThrow(/past the end|unexpected end/);
  });
});
