/**
 * The payload keys (DBOPS_PAYLOAD_KEYS): a file, as a Kubernetes Secret mounts it, of lines
 * `<key id>:<base64 of 32 random bytes>`. The first key encrypts; every key decrypts, so a key is
 * rotated by putting the new one first and keeping the old ones below it for as long as histories
 * encrypted with them are read. The key bytes live only in KeyObjects behind a private field:
 * printing, logging or JSON-serialising the config never shows them.
 */
import { createSecretKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** Key ids are written into every payload's metadata: short, printable, no separator. */
export const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
export const KEY_BYTES = 32;

/** The fix shown with every problem of the key file. */
export const KEY_FILE_HELP = `each line <key id>:<base64 of ${KEY_BYTES} random bytes> (make one with: echo "k1:$(openssl rand -base64 ${KEY_BYTES})"), first line encrypts, # comments and blank lines ignored`;

export class PayloadKeyring {
  readonly #keys: ReadonlyMap<string, KeyObject>;

  constructor(
    /** The file the keys were read from (shown by `dbops config`, never the keys). */
    readonly file: string,
    /** Key ids, the encrypting one first. */
    readonly ids: readonly string[],
    keys: ReadonlyMap<string, KeyObject>,
  ) {
    this.#keys = keys;
  }

  /** The id and key that encrypt. */
  get current(): { id: string; key: KeyObject } {
    const id = this.ids[0]!;
    return { id, key: this.#keys.get(id)! };
  }

  /** The key with this id, or undefined when the file does not hold it. */
  key(id: string): KeyObject | undefined {
    return this.#keys.get(id);
  }

  /** What a log or `console.log(config)` shows: the file and ids, never a key. */
  toJSON(): { file: string; ids: readonly string[] } {
    return { file: this.file, ids: this.ids };
  }
}

/** Parses the key file's text; throws an Error whose message names the line and the fix. */
export function parsePayloadKeys(file: string, text: string): PayloadKeyring {
  const ids: string[] = [];
  const keys = new Map<string, KeyObject>();
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const at = `line ${i + 1}`;
    const colon = line.indexOf(':');
    const id = colon < 0 ? '' : line.slice(0, colon).trim();
    const encoded = line.slice(colon + 1).trim();
    if (!KEY_ID.test(id)) {
      throw new Error(
        `${at}: expected <key id>:<base64 key> with a key id of letters, digits, . _ - (${KEY_FILE_HELP})`,
      );
    }
    // Buffer.from(base64) skips bad characters silently: check the text, then the length.
    const bytes = /^[A-Za-z0-9+/]+={0,2}$/.test(encoded) ? Buffer.from(encoded, 'base64') : undefined;
    if (bytes?.length !== KEY_BYTES) {
      throw new Error(`${at} (key ${id}): the key must be ${KEY_BYTES} bytes in base64 (${KEY_FILE_HELP})`);
    }
    if (keys.has(id)) throw new Error(`${at}: key id ${id} appears twice; each key needs its own id`);
    ids.push(id);
    keys.set(id, createSecretKey(bytes));
    bytes.fill(0);
  }
  if (ids.length === 0) throw new Error(`holds no key (${KEY_FILE_HELP})`);
  return new PayloadKeyring(file, ids, keys);
}

/** Reads and parses the key file; throws an Error whose message says what is wrong (never a key). */
export function readPayloadKeys(file: string): PayloadKeyring {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new Error(`cannot read the key file (${code}): mount the Secret there or fix the path`);
  }
  return parsePayloadKeys(file, text);
}
