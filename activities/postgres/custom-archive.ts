import { open, type FileHandle } from 'node:fs/promises';

/**
 * pg_dump's custom format, as far as data offsets are concerned (pg_backup_archiver.c ReadHead /
 * ReadToc, pg_backup_custom.c). A custom archive written to a pipe has every data offset "not set":
 * a parallel pg_restore must then scan the file for each table and becomes slower than one job.
 * `fillCustomArchiveOffsets` walks the data blocks once and writes the offsets into the TOC in
 * place, which is exactly what pg_dump itself does at the end when its output is a seekable file.
 */

const MAGIC = 'PGDMP';
const ARCH_CUSTOM = 1;
const BLK_DATA = 1;
const BLK_BLOBS = 3;
const OFFSET_NOT_SET = 1;
const OFFSET_SET = 2;

const version = (major: number, minor: number, rev = 0) => (major * 256 + minor) * 256 + rev;
const V1_3 = version(1, 3);
const V1_5 = version(1, 5);
const V1_6 = version(1, 6);
const V1_8 = version(1, 8);
const V1_9 = version(1, 9);
const V1_10 = version(1, 10);
const V1_11 = version(1, 11);
const V1_12 = version(1, 12);
const V1_14 = version(1, 14);
const V1_15 = version(1, 15);
const V1_16 = version(1, 16);
/** Newest minor version whose layout this reader knows; a newer archive is left untouched. */
const NEWEST_KNOWN = version(1, 16, 255);

export class ArchiveFormatError extends Error {}

/** Sequential reader with a large buffer; the hot path (small reads inside the buffer) is synchronous. */
class BufferedReader {
  private buf = Buffer.alloc(4 << 20);
  private start = 0; // file position of buf[0]
  private end = 0; // file position after the last valid byte in buf
  pos = 0;
  eof = false;

  constructor(
    private readonly fh: FileHandle,
    private readonly size: number,
  ) {}

  /** Makes at least `n` bytes at `pos` available (fewer only at end of file). */
  async fill(n: number): Promise<void> {
    if (this.pos >= this.start && this.pos + n <= this.end) return;
    if (n > this.buf.length) this.buf = Buffer.alloc(n);
    const { bytesRead } = await this.fh.read(this.buf, 0, this.buf.length, this.pos);
    this.start = this.pos;
    this.end = this.pos + bytesRead;
    this.eof = this.end >= this.size;
  }

  available(): number {
    return this.pos >= this.start ? Math.max(0, this.end - this.pos) : 0;
  }

  byte(): number {
    if (this.pos >= this.end) throw new ArchiveFormatError(`unexpected end of archive at byte ${this.pos}`);
    return this.buf[this.pos++ - this.start]!;
  }

  /** pg_dump's int: a sign byte, then `size` bytes little-endian. */
  int(size: number): number {
    const negative = this.byte() !== 0;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < size; i++) {
      value += this.byte() * scale;
      scale *= 256;
    }
    return negative ? -value : value;
  }

  skip(n: number): void {
    this.pos += n;
  }
}

interface TocOffsetField {
  readonly dumpId: number;
  readonly position: number;
  readonly flag: number;
}

export interface CustomArchiveOffsets {
  /** TOC entries in the archive. */
  readonly entries: number;
  /** Entries whose data offset was already recorded (pg_dump wrote to a file). */
  readonly alreadySet: number;
  /** Offsets this call wrote into the TOC. */
  readonly filled: number;
  /** Data blocks found while scanning (0 when nothing had to be filled). */
  readonly blocksScanned: number;
}

/** Reads the header and TOC; returns where each entry's offset field is and where the data starts. */
async function readToc(
  r: BufferedReader,
): Promise<{ fields: TocOffsetField[]; intSize: number; offSize: number }> {
  // A header and TOC are small next to the buffer, but strings can be long: fill per field.
  const need = async (n: number) => {
    await r.fill(n);
    if (r.available() < n)
      throw new ArchiveFormatError(`archive ends inside its table of contents at byte ${r.pos}`);
  };
  await need(16);
  const magic = String.fromCharCode(r.byte(), r.byte(), r.byte(), r.byte(), r.byte());
  if (magic !== MAGIC) throw new ArchiveFormatError('not a pg_dump archive (no PGDMP signature)');
  const v = version(r.byte(), r.byte(), r.byte());
  if (v < V1_12 || v > NEWEST_KNOWN) {
    throw new ArchiveFormatError(
      `archive version ${v >> 16}.${(v >> 8) & 255} is outside what this reader knows (1.12–1.16)`,
    );
  }
  const intSize = r.byte();
  const offSize = r.byte();
  const format = r.byte();
  if (format !== ARCH_CUSTOM)
    throw new ArchiveFormatError(`archive format ${format} is not the custom format`);
  const int = async () => {
    await need(1 + intSize);
    return r.int(intSize);
  };
  const str = async (): Promise<void> => {
    const len = await int();
    if (len > 0) r.skip(len);
  };
  const strOrNull = async (): Promise<boolean> => {
    const len = await int();
    if (len > 0) r.skip(len);
    return len >= 0;
  };
  if (v >= V1_15) {
    await need(1);
    r.byte(); // compression algorithm
  } else {
    await int();
  }
  for (let i = 0; i < 7; i++) await int(); // creation time
  await str(); // database name
  if (v >= V1_10) {
    await str(); // server version
    await str(); // pg_dump version
  }

  const count = await int();
  const fields: TocOffsetField[] = [];
  for (let i = 0; i < count; i++) {
    const dumpId = await int();
    if (dumpId <= 0)
      throw new ArchiveFormatError(`TOC entry ${i} has id ${dumpId}: corrupt table of contents`);
    await int(); // hadDumper
    if (v >= V1_8) await str(); // tableoid
    await str(); // oid
    await str(); // tag
    await str(); // desc
    if (v >= V1_11) await int(); // section
    await str(); // defn
    await str(); // dropStmt
    if (v >= V1_3) await str(); // copyStmt
    if (v >= V1_6) await str(); // namespace
    if (v >= V1_10) await str(); // tablespace
    if (v >= V1_14) await str(); // table access method
    if (v >= V1_16) await int(); // relkind
    await str(); // owner
    if (v >= V1_9) await str(); // "with oids"
    if (v >= V1_5) while (await strOrNull()); // dependencies, terminated by a null string
    await need(1 + offSize);
    const position = r.pos;
    const flag = r.byte();
    r.skip(offSize);
    fields.push({ dumpId, position, flag });
  }
  return { fields, intSize, offSize };
}

function encodeOffset(offset: number, offSize: number): Buffer {
  const out = Buffer.alloc(1 + offSize);
  out[0] = OFFSET_SET;
  let rest = offset;
  for (let i = 1; i <= offSize; i++) {
    out[i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  return out;
}

/**
 * Records in the archive's TOC where each entry's data block starts, if pg_dump could not (it wrote
 * to a pipe). Scans the data blocks once, sequentially; offsets already set are left alone, so an
 * archive pg_dump wrote to a file is only read up to the end of its TOC.
 */
export async function fillCustomArchiveOffsets(
  file: string,
  onProgress?: (bytes: number) => void,
): Promise<CustomArchiveOffsets> {
  const fh = await open(file, 'r+');
  try {
    const size = (await fh.stat()).size;
    const r = new BufferedReader(fh, size);
    const { fields, intSize, offSize } = await readToc(r);
    const missing = new Map<number, TocOffsetField>();
    for (const f of fields) if (f.flag === OFFSET_NOT_SET) missing.set(f.dumpId, f);
    const alreadySet = fields.filter((f) => f.flag === OFFSET_SET).length;
    if (missing.size === 0) return { entries: fields.length, alreadySet, filled: 0, blocksScanned: 0 };

    const found = new Map<number, number>();
    const header = 1 + intSize;
    const skipChunks = async () => {
      for (;;) {
        if (r.available() < header) await r.fill(header);
        const len = r.int(intSize);
        if (len === 0) return;
        if (len < 0) throw new ArchiveFormatError(`negative data chunk length at byte ${r.pos}`);
        r.skip(len);
      }
    };
    let blocks = 0;
    while (r.pos < size) {
      await r.fill(2 * header);
      const blockStart = r.pos;
      const type = r.byte();
      const id = r.int(intSize);
      if (type === BLK_DATA) {
        await skipChunks();
      } else if (type === BLK_BLOBS) {
        // Large objects: (oid, chunks) repeated, ended by oid 0.
        for (;;) {
          await r.fill(header);
          if (r.int(intSize) === 0) break;
          await skipChunks();
        }
      } else {
        throw new ArchiveFormatError(`unknown data block type ${type} at byte ${blockStart}`);
      }
      if (r.pos > size)
        throw new ArchiveFormatError(`data block of entry ${id} runs past the end of the archive`);
      found.set(id, blockStart);
      blocks++;
      onProgress?.(r.pos);
    }

    let filled = 0;
    for (const [dumpId, field] of missing) {
      const offset = found.get(dumpId);
      if (offset === undefined) continue;
      const bytes = encodeOffset(offset, offSize);
      await fh.write(bytes, 0, bytes.length, field.position);
      filled++;
    }
    return { entries: fields.length, alreadySet, filled, blocksScanned: blocks };
  } finally {
    await fh.close();
  }
}
