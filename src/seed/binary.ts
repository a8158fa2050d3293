/**
 * PostgreSQL's binary COPY format, written straight into buffers: no number or date is ever
 * formatted as text, and the server parses no text either (uuid, timestamptz, vector, int8 are
 * fixed-size binary fields). See https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4
 */

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
/** PostgreSQL's epoch (2000-01-01 UTC) in Unix milliseconds. */
const PG_EPOCH_MS = 946_684_800_000;
const TWO32 = 4_294_967_296;

/** One buffer of whole rows, and how many. */
export interface CopyChunk {
  readonly data: Buffer;
  readonly rows: number;
}

/** A field's binary form with its 4-byte length prefix (for constants written many times). */
export function field(bytes: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(4 + bytes.length);
  b.writeInt32BE(bytes.length, 0);
  b.set(bytes, 4);
  return b;
}
export const textField = (s: string): Buffer => field(Buffer.from(s, 'utf8'));
/** jsonb's binary form: version 1, then the JSON text. */
export const jsonbField = (json: string): Buffer => field(Buffer.from(`\x01${json}`, 'utf8'));
/** A numeric with no fraction digits beyond `scale` zeros: 0 <= n < 10000. */
export function numericField(n: number, scale: number): Buffer {
  const b = Buffer.alloc(n === 0 ? 8 : 10);
  b.writeInt16BE(n === 0 ? 0 : 1, 0); // ndigits (base 10000)
  b.writeInt16BE(0, 2); // weight
  b.writeInt16BE(0, 4); // sign: positive
  b.writeInt16BE(scale, 6); // dscale
  if (n !== 0) b.writeInt16BE(n, 8);
  return field(b);
}

/**
 * Writes rows of one COPY ... (FORMAT binary) stream. Call row(fieldCount) before each row's
 * fields, and take() when full() says so (and at the end, with last = true).
 */
export class CopyWriter {
  buf: Buffer;
  pos = 0;
  private rows = 0;

  /** maxRow: an upper bound of one row's bytes (a row never straddles two chunks). */
  constructor(
    private readonly size: number,
    private readonly maxRow: number,
  ) {
    this.buf = Buffer.allocUnsafe(size + maxRow + 2);
    SIGNATURE.copy(this.buf, 0);
    this.buf.writeInt32BE(0, 11); // flags
    this.buf.writeInt32BE(0, 15); // header extension length
    this.pos = 19;
  }

  full(): boolean {
    return this.pos >= this.size;
  }

  row(fields: number): void {
    this.rows++;
    const b = this.buf;
    b[this.pos] = fields >>> 8;
    b[this.pos + 1] = fields & 255;
    this.pos += 2;
  }

  /** The rows written so far (with the trailer if last), and a fresh buffer for the next ones. */
  take(last = false): CopyChunk {
    if (last) {
      this.buf[this.pos] = 0xff;
      this.buf[this.pos + 1] = 0xff;
      this.pos += 2;
    }
    const chunk = { data: this.buf.subarray(0, this.pos), rows: this.rows };
    this.buf = Buffer.allocUnsafe(this.size + this.maxRow + 2);
    this.pos = 0;
    this.rows = 0;
    return chunk;
  }

  /** A precomputed field (length prefix included). */
  raw(f: Uint8Array): void {
    this.buf.set(f, this.pos);
    this.pos += f.length;
  }

  nul(): void {
    this.buf.writeInt32BE(-1, this.pos);
    this.pos += 4;
  }

  private len(n: number): void {
    const b = this.buf;
    const p = this.pos;
    b[p] = n >>> 24;
    b[p + 1] = (n >>> 16) & 255;
    b[p + 2] = (n >>> 8) & 255;
    b[p + 3] = n & 255;
    this.pos = p + 4;
  }

  /** A uuid field from 16 bytes at src[off]. */
  uuid(src: Uint8Array, off: number): void {
    this.len(16);
    const b = this.buf;
    const p = this.pos;
    for (let i = 0; i < 16; i++) b[p + i] = src[off + i]!;
    this.pos = p + 16;
  }

  /** A uuid field whose bytes the caller writes at the returned offset. */
  uuidSlot(): number {
    this.len(16);
    const p = this.pos;
    this.pos = p + 16;
    return p;
  }

  /** A text field of Latin-1/ASCII characters only. */
  ascii(s: string): void {
    const p = this.pos;
    const n = this.buf.write(s, p + 4, 'latin1');
    this.len(n);
    this.pos = p + 4 + n;
  }

  /** A jsonb field from JSON text of ASCII characters only. */
  asciiJsonb(json: string): void {
    const p = this.pos;
    this.buf[p + 4] = 1; // jsonb binary format version
    const n = this.buf.write(json, p + 5, 'latin1');
    this.len(n + 1);
    this.pos = p + 5 + n;
  }

  int8(n: number): void {
    this.len(8);
    this.int64(n);
  }

  private int64(n: number): void {
    const hi = Math.floor(n / TWO32);
    this.buf.writeInt32BE(hi, this.pos);
    this.buf.writeUInt32BE(n - hi * TWO32, this.pos + 4);
    this.pos += 8;
  }

  /** timestamptz from Unix milliseconds. */
  timestamp(ms: number): void {
    this.len(8);
    this.int64((ms - PG_EPOCH_MS) * 1000);
  }

  /** pgvector's binary form (int16 dim, int16 unused, float4s), also vector_send()'s output. */
  vector(v: Float32Array): void {
    this.len(4 + 4 * v.length);
    this.vectorBody(v);
  }

  /** The same bytes as vector(), as a bytea field. */
  vectorBody(v: Float32Array): void {
    const b = this.buf;
    b.writeInt16BE(v.length, this.pos);
    b.writeInt16BE(0, this.pos + 2);
    let p = this.pos + 4;
    for (let i = 0; i < v.length; i++, p += 4) b.writeFloatBE(v[i]!, p);
    this.pos = p;
  }
}
