/**
 * The spec's backup.sh ran `pg_dump --verbose … 2>&1 | gzip`: pg_dump's progress messages went
 * into the dump. stderr is unbuffered and stdout is written in blocks, so each message lands
 * wherever stdout's last block ended, often in the middle of a line:
 *
 *     199999	xxxxxxxxxxxxxxxxxxxpg_dump: processing data for table "public.u"
 *     <the rest of the row>
 *
 * psql stops at the first of them. This filter removes each `pg_dump: <message>\n` whose message
 * is one of pg_dump's progress messages (their verbs below, from pg_dump 12 to 18), wherever it
 * starts, and keeps everything else byte for byte. COPY data never holds a raw newline (COPY's
 * text format escapes it), so only a value ending in such a sentence at the end of a row could be
 * taken for one: the rows would then join, and psql or the row counts of the verification refuse
 * the restore. Other `pg_dump: ` text (an error) is counted, not removed: adopt reports it.
 */

const MARK = 'pg_dump: ';
/** Longer than any progress message pg_dump writes (a long qualified name in quotes). */
const MAX_MESSAGE = 8192;
const PROGRESS = new RegExp(
  '^(?:(?:warning|detail|hint): .*|last built-in OID is \\d+|identifying extension members|' +
    '(?:reading|finding|flagging|saving|dumping|creating|processing|executing|restoring|restored|' +
    'setting|dropping|connecting|implied|disabling|enabling|launching|finished|skipping|entering|' +
    'reducing|transferring) .*)$',
);

export class VerboseFilter {
  /** Progress messages removed. */
  removed = 0;
  /** pg_dump's warnings among them (kept for the report: a warning may matter). */
  readonly warnings: string[] = [];
  /** `pg_dump: ` messages that are not progress (e.g. `error: …`): kept in the text, reported. */
  readonly others: string[] = [];
  /** Text not yet passed on: the start of what may be a message (latin1: one char per byte). */
  private carry = '';

  /** The text of `chunk` as psql must read it (what can be decided so far). */
  write(chunk: Buffer): Buffer {
    const s = this.carry + chunk.toString('latin1');
    this.carry = '';
    return Buffer.from(this.take(s, false), 'latin1');
  }

  /** The rest, at the end of the dump. */
  end(): Buffer {
    const s = this.carry;
    this.carry = '';
    return Buffer.from(this.take(s, true), 'latin1');
  }

  private take(s: string, last: boolean): string {
    let out = '';
    let pos = 0;
    for (;;) {
      const at = s.indexOf(MARK, pos);
      if (at < 0) {
        // Up to MARK's length - 1 characters may be the start of a mark split across chunks.
        const keep = last ? s.length : Math.max(pos, s.length - (MARK.length - 1));
        this.carry = s.slice(keep);
        return out + s.slice(pos, keep);
      }
      out += s.slice(pos, at);
      const nl = s.indexOf('\n', at);
      if (nl < 0) {
        if (!last && s.length - at <= MAX_MESSAGE) {
          this.carry = s.slice(at);
          return out;
        }
        out += MARK; // too long, or the text ends without a newline: not a message
        pos = at + MARK.length;
        continue;
      }
      const message = s.slice(at + MARK.length, nl);
      if (nl - at <= MAX_MESSAGE && PROGRESS.test(message)) {
        this.removed++;
        if (message.startsWith('warning: ') && this.warnings.length < 5) this.warnings.push(message);
        pos = nl + 1;
        continue;
      }
      if (nl - at <= MAX_MESSAGE && this.others.length < 5) this.others.push(message);
      out += MARK;
      pos = at + MARK.length;
    }
  }
}
