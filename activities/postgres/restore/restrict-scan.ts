/**
 * The guard that lets a plain SQL dump reach psql: psql's own meta-command lock must cover the
 * whole script. pg_dump (18, and 17.6/16.10/15.14/14.19/13.22 onward) writes `\restrict <key>`
 * near the top and `\unrestrict <key>` after its last statement; while restricted, psql refuses
 * every backslash command except `\unrestrict` with that key, so a `\! cmd` (a shell command on
 * the worker), `\o |cmd` or `\i file` hidden anywhere in between never runs.
 *
 * The scanner reads the decompressed script as it streams past (bounded memory whatever its size)
 * and refuses a script unless:
 * - every line before `\restrict K` is blank or a `--` comment (psql's comment runs to the end of
 *   the line and hides backslashes);
 * - `\restrict K` is a line of its own, K alphanumeric (what pg_dump and psql accept);
 * - `\unrestrict` appears nowhere but on exactly one line of its own, `\unrestrict K` with the same
 *   K. psql takes a backslash command anywhere on a line, so `SELECT 1; \unrestrict K` mid-line
 *   would lift the lock; pg_dump's COPY data never holds it, since COPY text escapes a backslash
 *   as `\\` (the scan refuses `\\unrestrict` too: a few false refusals of odd data are the price
 *   of not parsing SQL);
 * - only blank lines and `--` comments follow it.
 * Lines end at `\n` and at `\r` alike: psql's lexer ends a `--` comment at either, so
 * `-- x\r\! cmd` runs the command although a `\n` reader sees one comment line.
 */

/** The longest line start kept: enough for `\restrict ` and a key (pg_dump's are 64 characters). */
const HEAD_CHARS = 512;
const UNRESTRICT = /\\unrestrict/i;
/** `\unrestrict` is 11 characters: this many are kept across chunk boundaries to find it split. */
const CARRY = 10;
const RESTRICT_LINE = /^\\restrict ([A-Za-z0-9]+)$/;
const UNRESTRICT_LINE = /^\\unrestrict ([A-Za-z0-9]+)$/;
const LEADING = /^[ \t\f\v]*(--)?/;

type Phase = 'before' | 'restricted' | 'after';

/**
 * Blank or a `--` comment, from the line's start (`head`); a blank verdict needs the whole line,
 * since text may follow the whitespace beyond what was kept.
 */
function blankOrComment(head: string, whole: boolean): boolean {
  const m = LEADING.exec(head)!;
  return m[1] !== undefined || (whole && m[0].length === head.length);
}

/** Feed it a plain dump's bytes (write), then ask end() whether psql's lock covers the whole script. */
export class RestrictScanner {
  private phase: Phase = 'before';
  private key = '';
  private lineNo = 1;
  /** The current line's first HEAD_CHARS characters (latin1: one per byte). */
  private head = '';
  private length = 0;
  /** The current line's last CARRY characters, to find `\unrestrict` split across chunks. */
  private carry = '';
  private mentionsUnrestrict = false;
  /** The last CARRY characters of the previous chunk, for the per-chunk quick test. */
  private chunkCarry = '';
  private lastWasCR = false;
  private problem: string | undefined;

  /** Feeds the next bytes of the script. */
  write(chunk: Buffer): void {
    if (this.problem !== undefined || chunk.length === 0) return;
    const s = chunk.toString('latin1');
    // Lines are only searched for `\unrestrict` when their chunk holds it (rarely: once per dump).
    const seen = this.chunkCarry + s;
    const scan = UNRESTRICT.test(seen);
    this.chunkCarry = seen.slice(-CARRY);
    if (!scan && this.skipLocked(s)) return;
    let p = 0;
    // A `\n` right after a `\r` (also across chunks) ends no second line.
    if (this.lastWasCR && s.charCodeAt(0) === 10) p = 1;
    this.lastWasCR = false;
    let nextLF = s.indexOf('\n', p);
    let nextCR = s.indexOf('\r', p);
    while (p < s.length && this.problem === undefined) {
      if (nextLF !== -1 && nextLF < p) nextLF = s.indexOf('\n', p);
      if (nextCR !== -1 && nextCR < p) nextCR = s.indexOf('\r', p);
      const end = nextLF === -1 ? nextCR : nextCR === -1 ? nextLF : Math.min(nextLF, nextCR);
      this.add(s, p, end === -1 ? s.length : end, scan);
      if (end === -1) return;
      this.endLine();
      p = end + 1;
      if (s.charCodeAt(end) === 13) {
        if (end + 1 === s.length) this.lastWasCR = true;
        else if (s.charCodeAt(end + 1) === 10) p = end + 2;
      }
    }
  }

  /**
   * The common case, fast: inside the lock, a chunk without `\unrestrict` and without `\r` has
   * nothing to judge; its lines are only counted (the line in progress keeps its start). False
   * when the chunk needs the line-by-line walk.
   */
  private skipLocked(s: string): boolean {
    if (this.phase !== 'restricted' || this.mentionsUnrestrict || this.lastWasCR) return false;
    if (s.indexOf('\r') !== -1) return false;
    const last = s.lastIndexOf('\n');
    if (last !== -1) {
      for (let i = s.indexOf('\n'); i !== -1; i = s.indexOf('\n', i + 1)) this.lineNo++;
      this.head = '';
      this.length = 0;
      this.carry = '';
    }
    this.add(s, last + 1, s.length, false);
    return true;
  }

  /** Ends the script: why psql's lock does not cover it, or undefined when it does. */
  end(): string | undefined {
    if (this.problem === undefined && this.length > 0) this.endLine();
    if (this.problem !== undefined) return this.problem;
    if (this.phase === 'before')
      return 'has no "\\restrict <key>" line: it is not a plain dump of pg_dump 18 (or 17.6, 16.10, 15.14, 14.19, 13.22 and later), and psql would run any backslash command in it';
    if (this.phase === 'restricted')
      return `never reaches its "\\unrestrict <key>" line (${this.lineNo - 1} lines): it is not a complete plain dump of pg_dump`;
    return undefined;
  }

  private add(s: string, from: number, to: number, scan: boolean): void {
    if (to <= from) return;
    if (this.head.length < HEAD_CHARS)
      this.head += s.slice(from, Math.min(to, from + HEAD_CHARS - this.head.length));
    this.length += to - from;
    if (this.phase !== 'restricted' || this.mentionsUnrestrict) return;
    if (scan) this.mentionsUnrestrict = UNRESTRICT.test(this.carry + s.slice(from, to));
    this.carry = (this.carry + s.slice(Math.max(from, to - CARRY), to)).slice(-CARRY);
  }

  private endLine(): void {
    const whole = this.length <= HEAD_CHARS;
    const at = `line ${this.lineNo}`;
    if (this.phase === 'before') {
      const restrict = whole ? RESTRICT_LINE.exec(this.head) : null;
      if (restrict) {
        this.phase = 'restricted';
        this.key = restrict[1]!;
      } else if (!blankOrComment(this.head, whole)) {
        this.problem = `${at} comes before any "\\restrict <key>" line and is not blank or a -- comment: psql would run it with backslash commands allowed`;
      }
    } else if (this.phase === 'restricted' && this.mentionsUnrestrict) {
      const unrestrict = whole ? UNRESTRICT_LINE.exec(this.head) : null;
      if (!unrestrict)
        this.problem = `${at} holds "\\unrestrict" among other text: psql would lift its backslash-command lock there`;
      else if (unrestrict[1] !== this.key)
        this.problem = `${at} is "\\unrestrict" with another key than the "\\restrict" line: not pg_dump's output`;
      else this.phase = 'after';
    } else if (this.phase === 'after' && !blankOrComment(this.head, whole)) {
      this.problem = `${at} follows the "\\unrestrict" line and is not blank or a -- comment: psql would run it with backslash commands allowed`;
    }
    this.lineNo++;
    this.head = '';
    this.length = 0;
    this.carry = '';
    this.mentionsUnrestrict = false;
  }
}
