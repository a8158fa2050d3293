import { createHash } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createBackupStore, type BackupStore } from '../../activities/storage';
import { s3Overrides, testConfig, uniqueSuffix } from '../helpers/stack';

const suffix = uniqueSuffix();
const tmpRoot = path.join(os.tmpdir(), `t_storage_${suffix}`);

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const stores: { name: string; make: () => BackupStore }[] = [
  { name: 'local', make: () => createBackupStore({ kind: 'local', dir: tmpRoot }) },
  { name: 's3', make: () => createBackupStore(testConfig(s3Overrides(`t_storage_${suffix}`)).storage) },
];

afterAll(async () => {
  await rm(tmpRoot, { recursive: true, force: true });
  const s3 = stores[1]!.make();
  for (const o of await s3.list('')) await s3.delete(o.key);
  await s3.close();
});

describe.each(stores)('$name store', ({ make }) => {
  it('streams a multi-part object in and out with the same bytes, lists, heads, ranges and deletes', async () => {
    const store = make();
    const data = Buffer.alloc(12 * 1024 * 1024 + 123);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i, i);
    const { size } = await store.put(
      'db1/obj/big.bin',
      Readable.from([data.subarray(0, 5e6), data.subarray(5e6)]),
    );
    expect(size).toBe(data.length);
    const back = await readAll(await store.get('db1/obj/big.bin'));
    expect(createHash('sha256').update(back).digest('hex')).toBe(
      createHash('sha256').update(data).digest('hex'),
    );
    expect(
      (await readAll(await store.get('db1/obj/big.bin', { start: 4096, end: 4099 }))).readUInt32LE(0),
    ).toBe(4096);
    expect((await store.head('db1/obj/big.bin'))?.size).toBe(data.length);
    expect(await store.head('db1/obj/missing')).toBeUndefined();
    await store.putJson('db1/obj/m.json', { a: 'x"y' });
    await store.replaceJson('db1/latest.json', { id: 1 });
    await store.replaceJson('db1/latest.json', { id: 2 });
    expect(await store.getJson('db1/latest.json')).toEqual({ id: 2 });
    expect(await store.getJson('db1/nothing.json')).toBeUndefined();
    expect((await store.list('db1/')).map((o) => o.key)).toEqual([
      'db1/latest.json',
      'db1/obj/big.bin',
      'db1/obj/m.json',
    ]);
    await store.delete('db1/obj/big.bin');
    await store.delete('db1/obj/big.bin');
    expect((await store.list('db1/obj/')).map((o) => o.key)).toEqual(['db1/obj/m.json']);
    expect(store.describe('db1/obj/m.json')).toMatch(
      /(^\/.*db1\/obj\/m\.json$)|(^s3:\/\/.*\/t_storage_.*\/db1\/obj\/m\.json$)/,
    );
    await store.probeWritable();
    await store.close();
  });

  it('a failed or aborted upload leaves no visible object', async () => {
    const store = make();
    const failing = new PassThrough();
    const put = store.put('db2/fail/x.bin', failing);
    failing.write(Buffer.alloc(9 * 1024 * 1024));
    setTimeout(() => failing.destroy(new Error('pg_dump died')), 200);
    await expect(put).rejects.toThrow();

    const ac = new AbortController();
    const slow = new PassThrough();
    const put2 = store.put('db2/abort/x.bin', slow, { signal: ac.signal });
    slow.write(Buffer.alloc(9 * 1024 * 1024));
    setTimeout(() => ac.abort(new Error('cancelled')), 200);
    await expect(put2).rejects.toThrow();
    expect(await store.list('db2/')).toEqual([]);
    await store.close();
  });

  it('refuses keys that escape the root', async () => {
    const store = make();
    await expect(store.put('../evil', Readable.from(['x']))).rejects.toThrow(/not valid/);
    await expect(store.get('a/../../etc/passwd')).rejects.toThrow(/not valid/);
    expect(() => store.describe('/abs')).toThrow(/not valid/);
    await store.close();
  });
});

describe('misconfigured stores', () => {
  it('an unwritable folder fails the probe naming the folder and the fix', async () => {
    const parent = await mkdtemp(path.join(os.tmpdir(), 't_storage_ro_'));
    try {
      const file = path.join(parent, 'a-file');
      await writeFile(file, 'x');
      await chmod(parent, 0o500);
      // A folder below a regular file cannot be created even by root.
      const store = createBackupStore({ kind: 'local', dir: path.join(file, 'backups') });
      await expect(store.probeWritable()).rejects.toThrow(
        /backup folder .*a-file\/backups is not writable.*DBOPS_BACKUP_DIR/,
      );
    } finally {
      await chmod(parent, 0o700);
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('a missing bucket fails the probe naming the bucket', async () => {
    const cfg = testConfig({
      ...s3Overrides(`t_storage_${suffix}`),
      DBOPS_S3_BUCKET: `no-such-bucket-${suffix}`,
    });
    const store = createBackupStore(cfg.storage);
    await expect(store.probeWritable()).rejects.toThrow(
      new RegExp(`S3 bucket no-such-bucket-${suffix} does not exist`),
    );
    await store.close();
  });
});
