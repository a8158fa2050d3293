import path from 'node:path';
import type { DataConverter } from '@temporalio/common';
import type { Config } from '../config';
import { resolveSource } from '../worker/bundle';
import { EncryptionCodec } from './encryption';

/** The module of the failure converter used when payloads are encrypted (./sealed-failures.ts). */
export const SEALED_FAILURES_PATH = resolveSource(path.join(__dirname, 'sealed-failures'));

/** True when this configuration encrypts payloads and failure text (DBOPS_PAYLOAD_KEYS set). */
export function sealsPayloads(config: Pick<Config, 'payloadKeys'>): boolean {
  return config.payloadKeys !== undefined;
}

/**
 * The one definition of how dbops converts payloads, given to every Temporal Client and Worker it
 * creates (src/client/connection.ts, src/worker/create.ts, test/helpers/worker.ts): the default
 * JSON conversion, then AES-256-GCM encryption with DBOPS_PAYLOAD_KEYS (./encryption.ts). Without
 * keys the codec passes payloads in clear and refuses encrypted ones with the variable to set.
 * With keys, failure messages and stack traces are encrypted too (./sealed-failures.ts); the
 * workflow bundle must then be built with the same converter (src/worker/bundle.ts).
 */
export function dataConverter(config: Pick<Config, 'payloadKeys'>): DataConverter {
  const payloadCodecs = [new EncryptionCodec(config.payloadKeys)];
  return sealsPayloads(config)
    ? { payloadCodecs, failureConverterPath: SEALED_FAILURES_PATH }
    : { payloadCodecs };
}
