import { open } from 'node:fs/promises';

/**
 * The members of a tar file that dbops reads from a base backup (backup_label, backup_manifest),
 * found by walking the headers with positioned reads: a few hundred bytes per member, never the
 * file's data. pg_basebackup writes ustar headers (src/port/tar.c): a 512-byte header, the data
 * padded to 512, two zero blocks at the end; sizes of 8 GiB and more in base-256.
 */

const BLOCK = 512;

export interface TarHeader {
  readonly name: string;
  readonly size: number;
  /** '0' (or NUL) regular file, '5' directory, '2' symlink, ... */
  readonly type: string;
}

/** The size field (offset 124, 12 bytes): octal text, or base-256 when its first byte has the high bit set. */
function tarSize(field: Buffer): number {
  if ((field[0]! & 0x80) !== 0) {
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  if (!/^[0-7]*$/.test(text)) throw new Error(`tar header has a bad size field ${JSON.stringify(text)}`);
  return text === '' ? 0 : parseInt(text, 8);
}

/** Parses one 512-byte header; undefined for the zero block that ends the archive. Checks the header checksum. */
export function parseTarHeader(block: Buffer): TarHeader | undefined {
  if (block.length !== BLOCK) throw new Error(`tar header is ${block.length} bytes, not ${BLOCK}`);
  if (block.every((b) => b === 0)) return undefined;
  const stored = parseInt(block.subarray(148, 156).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  if (stored !== sum)
    throw new Error(`tar header checksum ${stored} does not match ${sum}: not a tar header`);
  const cstring = (from: number, len: number) =>
    block
      .subarray(from, from + len)
      .toString('utf8')
      .replace(/\0.*$/s, '');
  const name = cstring(0, 100);
  const prefix = block.subarray(257, 263).toString('latin1').startsWith('ustar') ? cstring(345, 155) : '';
  return {
    name: prefix ? `${prefix}/${name}` : name,
    size: tarSize(block.subarray(124, 136)),
    type: String.fromCharCode(block[156] || 0x30),
  };
}

/** Where a member's data is in the file. */
export interface TarMember {
  readonly offset: number;
  readonly size: number;
}

/** Walks `file`'s headers and returns where each wanted member's data is, and how many members there are. */
export async function findTarMembers(
  file: string,
  wanted: readonly string[],
  signal?: AbortSignal,
): Promise<{ members: Map<string, TarMember>; count: number }> {
  const handle = await open(file, 'r');
  const members = new Map<string, TarMember>();
  const block = Buffer.alloc(BLOCK);
  let count = 0;
  try {
    const { size: fileSize } = await handle.stat();
    for (let pos = 0; pos + BLOCK <= fileSize;) {
      signal?.throwIfAborted();
      const { bytesRead } = await handle.read(block, 0, BLOCK, pos);
      if (bytesRead !== BLOCK) throw new Error(`tar file ends inside a header at ${pos}`);
      const header = parseTarHeader(block);
      if (!header) return { members, count };
      count++;
      const name = header.name.replace(/^\.\//, '');
      if (wanted.includes(name)) members.set(name, { offset: pos + BLOCK, size: header.size });
      pos += BLOCK + Math.ceil(header.size / BLOCK) * BLOCK;
      if (pos > fileSize) throw new Error(`tar member ${name} runs past the end of the file`);
    }
    throw new Error('tar file has no end-of-archive block (truncated)');
  } finally {
    await handle.close();
  }
}
