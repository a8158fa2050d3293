import { crc32 } from 'node:zlib';

/**
 * Flyway's checksum of a SQL migration: UTF-8 text, leading BOM dropped, split into lines on
 * \r\n, \r or \n with the terminators dropped, CRC32 over the lines' UTF-8 bytes, as a signed
 * 32-bit int. So LF and CRLF copies of a file have the same checksum.
 */
export function flywayChecksum(content: Buffer | string): number {
  let text = typeof content === 'string' ? content : content.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const joined = text.split(/\r\n|\r|\n/).join('');
  return crc32(Buffer.from(joined, 'utf8')) | 0;
}
