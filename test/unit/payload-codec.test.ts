import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Payload } from '@temporalio/common';
import { defaultPayloadConverter } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { FailureType } from '../../common/failures';
import { EncryptionCodec, isEncrypted } from '../../src/codec/encryption';
import { parsePayloadKeys, type PayloadKeyring } from '../../src/codec/keys';
import { describeConfig, loadConfig } from '../../src/config';
import { configProblems, errorOf } from '../helpers/errors';

const base = { DBOPS_STACK_HOME: '/nonexistent-stack-home' };
const keyText = () => randomBytes(32).toString('base64');
const ring = (...lines: string[]): PayloadKeyring => parsePayloadKeys('/keys/test', lines.join('\n'));
const clear = (value: unknown): Payload => defaultPayloadConverter.toPayload(value);
const text = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('utf8');

const SECRET_VALUE = { database: 'orders_eu_7f3a', rows: 918_273 };

describe('payload key file (DBOPS_PAYLOAD_KEYS)', () => {
  it('reads ids in order, skipping comments and blank lines; the first encrypts', () => {
    const keys = ring('# rotated 2026-12', '', `k2:${keyText()}`, `  k1 : ${keyText()}  `);
    expect(keys.ids).toEqual(['k2', 'k1']);
    expect(keys.current.id).toBe('k2');
  });

  it.each([
    ['no colon', 'k1', /line 1: expected <key id>:<base64 key>/],
    ['bad id', `k 1:${keyText()}`, /line 1: expected <key id>/],
    [
      'short key',
      `k1:${randomBytes(16).toString('base64')}`,
      /line 1 \(key k1\): the key must be 32 bytes in base64/,
    ],
    ['not base64', `k1:${'!'.repeat(44)}`, /the key must be 32 bytes/],
    ['duplicate id', `k1:${keyText()}\nk1:${keyText()}`, /line 2: key id k1 appears twice/],
    ['only comments', '# nothing', /holds no key .*openssl rand -base64 32/],
  ])('refuses %s with the line and the fix', (_name, content, message) => {
    expect(() => parsePayloadKeys('/keys/test', content)).toThrow(message);
  });

  it('config reads the file once, names the variable on a bad or missing file, and never shows a key', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dbops-keys-'));
    const file = path.join(dir, 'keys');
    const secret = keyText();
    writeFileSync(file, `k9:${secret}\n`);
    const config = loadConfig({ ...base, DBOPS_PAYLOAD_KEYS: file });
    expect(config.payloadKeys?.ids).toEqual(['k9']);
    expect(JSON.stringify(config)).not.toContain(secret);
    const row = describeConfig(config).find((r) => r.name === 'DBOPS_PAYLOAD_KEYS');
    expect(row?.value).toBe(`${file} (keys k9)`);

    expect(configProblems({ ...base, DBOPS_PAYLOAD_KEYS: path.join(dir, 'missing') })).toEqual([
      `DBOPS_PAYLOAD_KEYS=${path.join(dir, 'missing')}: cannot read the key file (ENOENT): mount the Secret there or fix the path`,
    ]);
    writeFileSync(file, `k9:${secret.slice(0, 20)}\n`);
    const [problem] = configProblems({ ...base, DBOPS_PAYLOAD_KEYS: file });
    expect(problem).toMatch(/^DBOPS_PAYLOAD_KEYS=.*: line 1 \(key k9\): the key must be 32 bytes/);
    expect(problem).not.toContain(secret.slice(0, 20));
  });
});

describe('EncryptionCodec (AES-256-GCM)', () => {
  const k1 = `k1:${keyText()}`;
  const k2 = `k2:${keyText()}`;

  it('encrypts with the first key, names it in the metadata, and decrypts to the same payload', async () => {
    const codec = new EncryptionCodec(ring(k1));
    const payload = clear(SECRET_VALUE);
    const [encoded] = await codec.encode([payload]);
    expect(isEncrypted(encoded!)).toBe(true);
    expect(text(encoded!.metadata?.['encryption-key-id'])).toBe('k1');
    expect(text(encoded!.metadata?.['encryption-cipher'])).toBe('AES-256-GCM');
    // Neither the value nor its original encoding is readable in what the server stores.
    const stored = Buffer.from(encoded!.data!).toString('latin1');
    for (const clue of ['orders_eu_7f3a', '918273', 'json/plain']) expect(stored).not.toContain(clue);
    const [decoded] = await codec.decode([encoded!]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual(SECRET_VALUE);
    // A fresh IV each time: the same value never encrypts to the same bytes.
    const [again] = await codec.encode([payload]);
    expect(Buffer.from(again!.data!).equals(Buffer.from(encoded!.data!))).toBe(false);
  });

  it('rotation: the new key encrypts, payloads of the old key still decrypt while its line stays', async () => {
    const [old] = await new EncryptionCodec(ring(k1)).encode([clear(SECRET_VALUE)]);
    const rotated = new EncryptionCodec(ring(k2, k1));
    const [fresh] = await rotated.encode([clear(SECRET_VALUE)]);
    expect(text(fresh!.metadata?.['encryption-key-id'])).toBe('k2');
    const decoded = await rotated.decode([old!, fresh!]);
    expect(decoded.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([SECRET_VALUE, SECRET_VALUE]);
  });

  it('refuses a payload of a key id the file does not hold, naming the id and the fix', async () => {
    const [old] = await new EncryptionCodec(ring(k1)).encode([clear(SECRET_VALUE)]);
    const err = await errorOf(new EncryptionCodec(ring(k2)).decode([old!]));
    expect(err.type).toBe(FailureType.Misconfigured);
    expect(err.message).toBe(
      "payload encrypted with key id k1, which DBOPS_PAYLOAD_KEYS (/keys/test, keys k2) does not hold: add that key's line back to the file (keep retired keys for as long as their histories are read)",
    );
  });

  it('refuses altered ciphertext, and another key under the same id', async () => {
    const codec = new EncryptionCodec(ring(k1));
    const [encoded] = await codec.encode([clear(SECRET_VALUE)]);
    const data = Buffer.from(encoded!.data!);
    data[20] = data[20]! ^ 0x01;
    const tampered = await errorOf(codec.decode([{ ...encoded!, data }]));
    expect(tampered.type).toBe(FailureType.IntegrityCheckFailed);
    expect(tampered.message).toMatch(/key id k1 fails authentication: it was altered/);
    const impostor = await errorOf(new EncryptionCodec(ring(`k1:${keyText()}`)).decode([encoded!]));
    expect(impostor.type).toBe(FailureType.IntegrityCheckFailed);
    const truncated = await errorOf(codec.decode([{ ...encoded!, data: data.subarray(0, 10) }]));
    expect(truncated.message).toMatch(/is truncated \(10 bytes\)/);
  });

  it('passes payloads without the encryption metadata as they are (histories recorded before)', async () => {
    const plain = [clear(SECRET_VALUE), clear(null), clear('text')];
    expect(await new EncryptionCodec(ring(k1)).decode(plain)).toEqual(plain);
    expect(await new EncryptionCodec(undefined).decode(plain)).toEqual(plain);
  });

  it('without keys: encodes nothing, refuses encrypted payloads naming DBOPS_PAYLOAD_KEYS', async () => {
    const plain = [clear(SECRET_VALUE)];
    expect(await new EncryptionCodec(undefined).encode(plain)).toEqual(plain);
    const [encoded] = await new EncryptionCodec(ring(k1)).encode(plain);
    const err = await errorOf(new EncryptionCodec(undefined).decode([encoded!]));
    expect(err.type).toBe(FailureType.Misconfigured);
    expect(err.message).toMatch(
      /key id k1, but DBOPS_PAYLOAD_KEYS is not set: set it to the payload key file/,
    );
  });
});
