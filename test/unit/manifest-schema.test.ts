import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createBackupStore,
  createStorageActivities,
  loadManifest,
  type BackupStore,
} from '../../activities/storage';
import { MAX_MANIFEST_BYTES, parseManifest } from '../../activities/storage/manifest-schema';
import { manifestKey } from '../../common/backup';
import { failureTypeOf, rootMessage } from '../../common/failures';
import { SAMPLE_ID, SAMPLE_MANIFEST } from '../helpers/manifests';

const ID = SAMPLE_ID;
const MANIFEST = SAMPLE_MANIFEST;

const problem = (value: unknown, id = ID) => {
  const r = parseManifest(value, id);
  return 'problem' in r ? r.problem : undefined;
};

describe('manifest schema', () => {
  it('accepts what the backup workflow writes, with or without the optional fields', () => {
    expect(parseManifest(MANIFEST, ID)).toEqual({ manifest: MANIFEST });
    const { statistics: _s, workflowId: _w, runId: _r, ...minimal } = MANIFEST;
    expect(problem({ ...minimal, schemaVersion: null })).toBeUndefined();
  });

  it('refuses unknown fields, at any depth, naming them', () => {
    expect(problem({ ...MANIFEST, restoreCommand: 'psql' })).toBe(
      'is not a dbops manifest: unknown field "restoreCommand"',
    );
    expect(problem({ ...MANIFEST, integrity: { ...MANIFEST.integrity, by: 'me' } })).toBe(
      'is not a dbops manifest: unknown field "by" in integrity',
    );
  });

  it('refuses missing and mistyped fields, naming each', () => {
    const { sha256: _sha, ...noDigest } = MANIFEST;
    expect(problem(noDigest)).toBe('is not a dbops manifest: field sha256: missing (expected string)');
    const tables = [MANIFEST.tables[0], { ...MANIFEST.tables[1], rows: -1 }];
    expect(problem({ ...MANIFEST, sizeBytes: '5822461', tables })).toMatch(
      /^is not a dbops manifest: field sizeBytes: .*expected number.*; field tables\[1\]\.rows: .*>=0/,
    );
    expect(problem({ ...MANIFEST, sha256: MANIFEST.sha256.toUpperCase() })).toMatch(
      /field sha256: expected 64 lowercase hex digits/,
    );
    expect(problem({ ...MANIFEST, format: 'tar' })).toMatch(/field format: .*"custom"\|"directory"\|"plain"/);
    expect(problem({ ...MANIFEST, manifestVersion: 2 })).toMatch(/field manifestVersion: /);
    expect(problem({ ...MANIFEST, startedAt: 'yesterday' })).toMatch(/field startedAt: /);
    expect(problem({ ...MANIFEST, sizeBytes: 1.5 })).toMatch(/field sizeBytes: /);
    expect(problem([MANIFEST])).toMatch(/field \(top level\): .*expected object/);
    expect(problem({})).toMatch(/; and \d+ more$/);
  });

  it('refuses a signature of another shape', () => {
    const signature = { alg: 'rsa', keyId: 'x', value: 'AAAA' };
    expect(problem({ ...MANIFEST, signature })).toMatch(
      /field signature\.alg: .*; field signature\.keyId: expected 16 lowercase hex digits; field signature\.value: /,
    );
  });

  it("keeps manifestMismatch's rules: another backup, another database, a file its format does not write", () => {
    expect(problem(MANIFEST, 'recsys_20261204_113952')).toBe(
      `names backup "${ID}", not recsys_20261204_113952`,
    );
    expect(problem({ ...MANIFEST, id: 'shop_20261204_113951' }, 'shop_20261204_113951')).toBe(
      'names database "recsys", not shop',
    );
    expect(problem({ ...MANIFEST, format: 'plain' })).toBe(
      'names archive "dump.pgcustom.zst", but a plain zstd backup is dump.sql.zst',
    );
  });
});

describe('loadManifest from a store', () => {
  let dir: string;
  let store: BackupStore;
  const key = manifestKey('recsys', ID);
  const put = async (text: string | Buffer) => {
    await mkdir(path.join(dir, 'recsys', ID), { recursive: true });
    await writeFile(path.join(dir, key), text);
  };
  const refusal = (id = ID) =>
    loadManifest(store, id).then(
      () => undefined,
      (err: unknown) => ({ type: failureTypeOf(err), message: rootMessage(err) }),
    );

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'dbops-manifest-'));
    store = createBackupStore({ kind: 'local', dir });
  });
  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('loads a valid manifest', async () => {
    await put(JSON.stringify(MANIFEST, null, 2));
    expect(await loadManifest(store, ID)).toEqual(MANIFEST);
  });

  it('is NotFound without a manifest', async () => {
    expect(await refusal('recsys_20261204_000000')).toMatchObject({
      type: 'NotFound',
      message: expect.stringMatching(/has no manifest at .*dbops backups list/) as string,
    });
  });

  it('refuses a manifest larger than the bound without parsing it', async () => {
    await put(Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20));
    expect(await refusal()).toEqual({
      type: 'IntegrityCheckFailed',
      message: `backup ${ID}: ${path.join(dir, key)} is ${MAX_MANIFEST_BYTES + 1} bytes, more than any manifest dbops writes (${MAX_MANIFEST_BYTES} at most): nothing it describes is restored; restore another backup ("dbops backups list") or take a new one ("dbops backup")`,
    });
  });

  it('refuses what is not JSON, and a field the schema refuses, naming the file, the field and the fix', async () => {
    await put('{"manifestVersion": 1,');
    expect(await refusal()).toMatchObject({
      type: 'IntegrityCheckFailed',
      message: expect.stringMatching(
        /manifest\.json is not JSON \(.*\): nothing it describes is restored/,
      ) as string,
    });
    await put(JSON.stringify({ ...MANIFEST, format: 'plain', file: 'dump.sql.zst', psql: '-c' }));
    expect(await refusal()).toMatchObject({
      type: 'IntegrityCheckFailed',
      message: expect.stringMatching(
        /manifest\.json is not a dbops manifest: unknown field "psql"; it was edited or copied from another backup: nothing it describes is restored; restore another backup/,
      ) as string,
    });
  });
});

describe('writeBackupManifest: the first manifest of a backup id stands', () => {
  it('a second backup in the same second is refused; the same workflow writing again (a retry) is not', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dbops-manifest-once-'));
    try {
      const activities = createStorageActivities({
        storage: { kind: 'local', dir },
        retention: { retentionDays: 30, minKeep: 7 },
      });
      await mkdir(path.join(dir, 'recsys', ID), { recursive: true });
      await writeFile(path.join(dir, 'recsys', ID, MANIFEST.file), Buffer.alloc(10));
      const first = { ...MANIFEST, sizeBytes: 10 };
      await activities.writeBackupManifest(first);
      await activities.writeBackupManifest(first);
      const err = await activities
        .writeBackupManifest({ ...first, workflowId: 'backup-manual-2' })
        .catch((e: unknown) => e);
      expect(failureTypeOf(err)).toBe('Refused');
      expect(rootMessage(err)).toMatch(
        /backup recsys_20261204_113951 already exists, made by "backup-recsys-20261204": two backups of recsys started in the same second/,
      );
      const store = createBackupStore({ kind: 'local', dir });
      expect((await loadManifest(store, ID)).workflowId).toBe('backup-recsys-20261204');
      await store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
