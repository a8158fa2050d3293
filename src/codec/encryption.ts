/**
 * AES-256-GCM payload codec (Temporal's encryption sample, with key rotation). Codecs run in the
 * worker's and the client's main thread, outside the workflow sandbox: workflow code never sees
 * a key or a cipher, and the histories hold only ciphertext.
 *
 * An encrypted payload: metadata `encoding: binary/encrypted`, `encryption-key-id: <id>`,
 * `encryption-cipher: AES-256-GCM`; data: 12-byte IV, ciphertext of the whole original payload
 * (protobuf, so its own metadata such as `encoding: json/plain` is hidden too), 16-byte tag.
 * Payloads without that encoding (histories recorded before encryption was on, test fixtures)
 * decode as they are.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { failure, FailureType } from '../../common/failures';
import type { PayloadKeyring } from './keys';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
export const CIPHER_METADATA = 'encryption-cipher';
export const CIPHER = 'AES-256-GCM';
const IV_BYTES = 12;
const TAG_BYTES = 16;

const utf8 = (text: string): Uint8Array => Buffer.from(text, 'utf8');
const text = (bytes: Uint8Array | null | undefined): string | undefined =>
  bytes ? Buffer.from(bytes).toString('utf8') : undefined;

/** True when the payload was encrypted by this codec (by its metadata). */
export function isEncrypted(payload: Payload): boolean {
  return text(payload.metadata?.encoding) === ENCRYPTED_ENCODING;
}

export class EncryptionCodec implements PayloadCodec {
  /** `keys` undefined (DBOPS_PAYLOAD_KEYS unset): payloads pass in clear, encrypted ones are refused clearly. */
  constructor(private readonly keys: PayloadKeyring | undefined) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const keys = this.keys;
    if (!keys) return payloads;
    const { id, key } = keys.current;
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: {
          encoding: utf8(ENCRYPTED_ENCODING),
          [KEY_ID_METADATA]: utf8(id),
          [CIPHER_METADATA]: utf8(CIPHER),
        },
        data,
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => (isEncrypted(payload) ? this.decrypt(payload) : payload));
  }

  private decrypt(payload: Payload): Payload {
    const id = text(payload.metadata?.[KEY_ID_METADATA]) ?? '(none)';
    const cipherName = text(payload.metadata?.[CIPHER_METADATA]) ?? CIPHER;
    if (cipherName !== CIPHER) {
      throw failure(
        FailureType.Misconfigured,
        `payload encrypted with ${cipherName}: this dbops decrypts ${CIPHER} only (upgrade dbops to the version that wrote it)`,
      );
    }
    if (!this.keys) {
      throw failure(
        FailureType.Misconfigured,
        `payload encrypted with key id ${id}, but DBOPS_PAYLOAD_KEYS is not set: set it to the payload key file the worker uses`,
      );
    }
    const key = this.keys.key(id);
    if (!key) {
      throw failure(
        FailureType.Misconfigured,
        `payload encrypted with key id ${id}, which DBOPS_PAYLOAD_KEYS (${this.keys.file}, keys ${this.keys.ids.join(', ')}) does not hold: add that key's line back to the file (keep retired keys for as long as their histories are read)`,
      );
    }
    const data = Buffer.from(payload.data ?? new Uint8Array());
    if (data.length < IV_BYTES + TAG_BYTES) {
      throw failure(
        FailureType.IntegrityCheckFailed,
        `payload encrypted with key id ${id} is truncated (${data.length} bytes)`,
      );
    }
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([
        decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      throw failure(
        FailureType.IntegrityCheckFailed,
        `payload encrypted with key id ${id} fails authentication: it was altered, or the key under id ${id} is not the one that encrypted it`,
      );
    }
    return temporal.api.common.v1.Payload.decode(plain);
  }
}
