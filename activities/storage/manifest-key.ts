/**
 * Signed manifests (DBOPS_MANIFEST_KEY): a worker with the key signs every manifest it writes and
 * refuses, on every read that restores, one that is unsigned or signed by another key. Write
 * access to the store then no longer decides what a restore runs: a forged or edited manifest
 * (and with it any archive digest) needs the worker's private key.
 *
 * The key is read once per process; it lives only in a KeyObject behind private fields, so
 * logging or serialising a store or its settings shows its id, never the key.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { BackupManifest, ManifestSignature } from '../../common/backup';
import { canonicalJson } from '../../common/canonical-hash';
import { FailureType, failure } from '../../common/failures';

const FIX = (file: string) =>
  `make one with "openssl genpkey -algorithm ed25519 -out ${file}" (readable by the worker only), or unset DBOPS_MANIFEST_KEY to write and accept unsigned manifests`;

/** An Ed25519 key pair that signs and proves manifests. */
export class ManifestKey {
  readonly #privateKey: KeyObject;
  readonly #publicKey: KeyObject;
  /** SHA-256 of the raw 32-byte public key, first 16 hex digits: what manifests name. */
  readonly keyId: string;

  constructor(privateKey: KeyObject) {
    this.#privateKey = privateKey;
    this.#publicKey = createPublicKey(privateKey);
    const raw = Buffer.from(this.#publicKey.export({ format: 'jwk' }).x!, 'base64url');
    this.keyId = createHash('sha256').update(raw).digest('hex').slice(0, 16);
  }

  sign(data: Buffer): string {
    return sign(null, data, this.#privateKey).toString('base64');
  }

  verify(data: Buffer, signature: string): boolean {
    return verify(null, data, this.#publicKey, Buffer.from(signature, 'base64'));
  }

  /** What util.inspect and JSON show: the key's id only. */
  toJSON(): { keyId: string } {
    return { keyId: this.keyId };
  }
}

const loaded = new Map<string, ManifestKey>();

/**
 * The key in PEM file `file` (DBOPS_MANIFEST_KEY), read on first use and kept for the process.
 * Misconfigured, naming the variable, the file and the fix, when it cannot be read or is not an
 * unencrypted Ed25519 private key.
 */
export function loadManifestKey(file: string): ManifestKey {
  const known = loaded.get(file);
  if (known) return known;
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw failure(
      FailureType.Misconfigured,
      `DBOPS_MANIFEST_KEY=${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): point it at the worker's Ed25519 private key (PEM), or ${FIX(file)}`,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    // The parser's message may quote the file's content: only its verdict is reported.
    throw failure(
      FailureType.Misconfigured,
      `DBOPS_MANIFEST_KEY=${file} is not an unencrypted PEM private key: ${FIX(file)}`,
    );
  } finally {
    pem.fill(0);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw failure(
      FailureType.Misconfigured,
      `DBOPS_MANIFEST_KEY=${file} holds a ${key.asymmetricKeyType ?? 'symmetric'} key, not an Ed25519 one: ${FIX(file)}`,
    );
  }
  const manifestKey = new ManifestKey(key);
  loaded.set(file, manifestKey);
  return manifestKey;
}

/** The bytes a signature covers: the canonical JSON of the manifest without its signature. */
function signedBytes(manifest: BackupManifest): Buffer {
  const { signature: _ignored, ...unsigned } = manifest;
  return Buffer.from(canonicalJson(unsigned), 'utf8');
}

/** The manifest signed with `key` (any earlier signature replaced). */
export function signManifest(manifest: BackupManifest, key: ManifestKey): BackupManifest {
  const { signature: _replaced, ...unsigned } = manifest;
  const signature: ManifestSignature = {
    alg: 'ed25519',
    keyId: key.keyId,
    value: key.sign(signedBytes(unsigned)),
  };
  return { ...unsigned, signature };
}

/**
 * Why `manifest` is not signed by `key`, or undefined when it is. A sentence continuing
 * "<manifest location> ...", naming the key id expected and the one found.
 */
export function signatureProblem(manifest: BackupManifest, key: ManifestKey): string | undefined {
  const s = manifest.signature;
  if (!s)
    return `is unsigned, but this worker requires manifests signed by its DBOPS_MANIFEST_KEY (key ${key.keyId})`;
  if (s.keyId !== key.keyId)
    return `is signed by key ${s.keyId}, not by this worker's DBOPS_MANIFEST_KEY (key ${key.keyId})`;
  if (!key.verify(signedBytes(manifest), s.value))
    return `carries a signature of key ${key.keyId} that does not match its content: it was edited after signing`;
  return undefined;
}

/** What listings show about a manifest's signature; `key` is the reader's, when it has one. */
export function signatureStatus(
  manifest: Partial<BackupManifest> | undefined,
  key: ManifestKey | undefined,
): string {
  const s: unknown = manifest?.signature;
  if (s === undefined) return 'unsigned';
  if (typeof s !== 'object' || s === null) return 'INVALID';
  if (!key) return `key ${String((s as Partial<ManifestSignature>).keyId)}, unverified`;
  try {
    return signatureProblem(manifest as BackupManifest, key) === undefined ? 'verified' : 'INVALID';
  } catch {
    // A malformed signature field (listing reads manifests unchecked) is no valid signature.
    return 'INVALID';
  }
}
