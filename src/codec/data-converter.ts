import type { DataConverter } from '@temporalio/common';
import type { Config } from '../config';
import { EncryptionCodec } from './encryption';

/**
 * The one definition of how dbops converts payloads, given to every Temporal Client and Worker it
 * creates (src/client/connection.ts, src/worker/create.ts, test/helpers/worker.ts): the default
 * JSON conversion, then AES-256-GCM encryption with DBOPS_PAYLOAD_KEYS (./encryption.ts). Without
 * keys the codec passes payloads in clear and refuses encrypted ones with the variable to set.
 */
export function dataConverter(config: Pick<Config, 'payloadKeys'>): DataConverter {
  return { payloadCodecs: [new EncryptionCodec(config.payloadKeys)] };
}
