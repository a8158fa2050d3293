import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createBackupStore,
  loadManifest,
  signatureStatus,
  withManifestKey,
  type BackupStore,
} from '../../activities/storage';
import { manifestToWrite } from '../../activities/storage/manifest';
import {
  loadManifestKey,
  type ManifestKey,
  signatureProblem,
  signManifest,
} from '../../activities/storage/manifest-key';
import { type BackupManifest, manifestKey } from '../../common/backup';
import { failureTypeOf, rootMessage } from '../../common/failures';

const ID = 'shop_20261204_113951';
const MANIFEST: BackupManifest = {
  manifestVersion: 1,
  id: ID,
  database: 'shop',
  format: 'plain',
  compression: 'zstd',
  file: 'dump.sql.zst',
  sizeBytes: 1234,
  sha256: 'ab'.repeat(32),
  rawBytes: 5678,
  startedAt: '2026-12-04T11:39:51.516Z',
  finishedAt: '2026-12-04T11:39:52.377Z',
  durationMs: 861,
  serverVersion: '18.6',
  pgDumpVersion: '18.6',
  schemaVersion: null,
  tables: [{ schema: 'public', table: 'orders', kind: 'table', rows: 3 }],
  integrity: { checkedAt: '2026-12-04T11:39:52.377Z', checks: 'size 1234 B + sha256' },
};

let dir: string;
/** Made by the command the docs give: `openssl genpkey -algorithm ed25519`. */
let keyFile: string;
let otherKeyFile: string;
let key: ManifestKey;
let other: ManifestKey;

async function opensslKey(name: string): Promise<string> {
  const file = path.join(dir, name);
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', file]);
  return file;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'dbops-signing-'));
  keyFile = await opensslKey('manifest.pem');
  otherKeyFile = await opensslKey('other.pem');
  key = loadManifestKey(keyFile);
  other = loadManifestKey(otherKeyFile);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the manifest key (DBOPS_MANIFEST_KEY)', () => {
  it('names itself by the SHA-256 of its raw public key, first 16 hex digits', async () => {
    // The raw key, independently: the last 32 bytes of the DER public key (RFC 8410).
    const der = execFileSync('openssl', ['pkey', '-in', keyFile, '-pubout', '-outform', 'DER']);
    const raw = der.subarray(der.length - 32);
    expect(key.keyId).toBe(createHash('sha256').update(raw).digest('hex').slice(0, 16));
    expect(other.keyId).not.toBe(key.keyId);
    expect(await readFile(keyFile, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it('is read once per process: the file is not read again', async () => {
    const copy = path.join(dir, 'once.pem');
    await writeFile(copy, await readFile(keyFile));
    const first = loadManifestKey(copy);
    await unlink(copy);
    expect(loadManifestKey(copy)).toBe(first);
  });

  it('never shows the private key in logs or JSON', () => {
    const d = createPrivateKey(execFileSync('cat', [keyFile])).export({ format: 'jwk' }).d!;
    for (const shown of [
      inspect(key, { depth: 9, showHidden: true }),
      JSON.stringify(key),
      `${JSON.stringify({ key })}`,
    ])
      expect(shown).not.toContain(d);
    expect(JSON.stringify(key)).toBe(JSON.stringify({ keyId: key.keyId }));
  });

  it('refuses a missing file, a non-key and a key of another type, naming DBOPS_MANIFEST_KEY and the fix', async () => {
    const refusal = (file: string) => {
      try {
        loadManifestKey(file);
        return undefined;
      } catch (err) {
        return { type: failureTypeOf(err), message: rootMessage(err) };
      }
    };
    const fix = /openssl genpkey -algorithm ed25519 -out .*or unset DBOPS_MANIFEST_KEY/;
    const missing = refusal(path.join(dir, 'absent.pem'));
    expect(missing?.type).toBe('Misconfigured');
    expect(missing?.message).toMatch(/^DBOPS_MANIFEST_KEY=.*absent\.pem cannot be read \(ENOENT\)/);
    expect(missing?.message).toMatch(fix);

    const garbage = path.join(dir, 'garbage.pem');
    await writeFile(garbage, 'not-a-key-but-a-secret-s3cr3t');
    expect(refusal(garbage)?.message).toMatch(/garbage\.pem is not an unencrypted PEM private key/);
    expect(refusal(garbage)?.message).not.toContain('s3cr3t');

    const rsa = path.join(dir, 'rsa.pem');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await writeFile(rsa, privateKey.export({ format: 'pem', type: 'pkcs8' }));
    expect(refusal(rsa)).toMatchObject({
      type: 'Misconfigured',
      message: expect.stringMatching(/rsa\.pem holds a rsa key, not an Ed25519 one: make one with/) as string,
    });
  });
});

describe('signed manifests', () => {
  it('signs the canonical JSON without the signature, whatever the key order', () => {
    const signed = signManifest(MANIFEST, key);
    expect(signed.signature).toEqual({
      alg: 'ed25519',
      keyId: key.keyId,
      value: expect.stringMatching(/^[A-Za-z0-9+/]{86}==$/) as string,
    });
    expect(signatureProblem(signed, key)).toBeUndefined();
    const reordered = JSON.parse(
      JSON.stringify(Object.fromEntries(Object.entries(signed).reverse())),
    ) as BackupManifest;
    expect(signatureProblem(reordered, key)).toBeUndefined();
    // Signing again replaces the signature (Ed25519 is deterministic: the same one).
    expect(signManifest(signed, key)).toEqual(signed);
  });

  it('refuses unsigned, other-key and edited manifests, naming the key ids', () => {
    expect(signatureProblem(MANIFEST, key)).toBe(
      `is unsigned, but this worker requires manifests signed by its DBOPS_MANIFEST_KEY (key ${key.keyId})`,
    );
    expect(signatureProblem(signManifest(MANIFEST, other), key)).toBe(
      `is signed by key ${other.keyId}, not by this worker's DBOPS_MANIFEST_KEY (key ${key.keyId})`,
    );
    const edited = { ...signManifest(MANIFEST, key), sha256: 'cd'.repeat(32) };
    expect(signatureProblem(edited, key)).toMatch(/does not match its content: it was edited after signing/);
    // The key id names a key, it proves nothing: a forged id with another key's signature fails too.
    const forged = signManifest(MANIFEST, other);
    expect(
      signatureProblem({ ...forged, signature: { ...forged.signature!, keyId: key.keyId } }, key),
    ).toMatch(/does not match its content/);
  });

  it('shows listings what it can tell', () => {
    const signed = signManifest(MANIFEST, key);
    expect(signatureStatus(MANIFEST, key)).toBe('unsigned');
    expect(signatureStatus(signed, key)).toBe('verified');
    expect(signatureStatus(signed, undefined)).toBe(`key ${key.keyId}, unverified`);
    expect(signatureStatus({ ...signed, rawBytes: 1 }, key)).toBe('INVALID');
    expect(signatureStatus({ signature: 'junk' } as unknown as BackupManifest, key)).toBe('INVALID');
  });
});

describe('stores with and without the key', () => {
  let signing: BackupStore;
  let plain: BackupStore;
  const put = async (m: unknown) => {
    await mkdir(path.join(dir, 'store', 'shop', ID), { recursive: true });
    await writeFile(path.join(dir, 'store', manifestKey('shop', ID)), JSON.stringify(m));
  };
  const refusal = (store: BackupStore) =>
    loadManifest(store, ID).then(
      () => undefined,
      (err: unknown) => `${failureTypeOf(err)}: ${rootMessage(err)}`,
    );

  beforeAll(() => {
    const settings = { kind: 'local' as const, dir: path.join(dir, 'store') };
    signing = createBackupStore(withManifestKey(settings, keyFile));
    plain = createBackupStore(withManifestKey(settings, undefined));
  });

  it('a store with the key signs what it writes and loads only what it signed', async () => {
    const written = manifestToWrite(signing, MANIFEST);
    expect(written.signature?.keyId).toBe(key.keyId);
    await put(written);
    expect(await loadManifest(signing, ID)).toEqual(written);

    await put(MANIFEST);
    expect(await refusal(signing)).toMatch(
      new RegExp(
        `^IntegrityCheckFailed: backup ${ID}: .*manifest\\.json is unsigned, but this worker requires manifests signed by its DBOPS_MANIFEST_KEY \\(key ${key.keyId}\\): nothing it describes is restored; restore a backup written by a worker with this key`,
      ),
    );
    await put(signManifest(MANIFEST, other));
    expect(await refusal(signing)).toMatch(new RegExp(`is signed by key ${other.keyId}, not by`));
  });

  it('a store without the key writes unsigned manifests and accepts signed and unsigned ones', async () => {
    expect(manifestToWrite(plain, signManifest(MANIFEST, key)).signature).toBeUndefined();
    await put(MANIFEST);
    expect(await loadManifest(plain, ID)).toEqual(MANIFEST);
    await put(signManifest(MANIFEST, other));
    expect((await loadManifest(plain, ID)).signature?.keyId).toBe(other.keyId);
  });

  it('a manifest with an unknown field is refused before its signature is looked at', async () => {
    await put({ ...signManifest(MANIFEST, key), extra: true });
    expect(await refusal(signing)).toMatch(/is not a dbops manifest: unknown field "extra"/);
  });
});
