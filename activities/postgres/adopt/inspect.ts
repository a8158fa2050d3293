/**
 * What a spec backup's decompressed text says about itself, read once as it streams: pg_dump's
 * header and end line, its versions, whether it carries owners and grants, its --verbose lines,
 * and which \restrict lock covers it as a restore will read it (restore/plain-text.ts: its own
 * lock, or one added for a pg_dump older than the fix). Nothing here runs the SQL: the dump is
 * untrusted input until a restore proves it.
 */
import type { AdoptedFrom } from '../../../common/adopted';
import type { DumpOptions } from '../../../common/dump-options';
import { PlainDumpText } from '../restore/plain-text';

const HEAD_BYTES = 64 * 1024;
const TAIL_BYTES = 4096;
const HEADER = /^-- PostgreSQL database dump$/m;
const END = '-- PostgreSQL database dump complete';
/** `ALTER TABLE public.users OWNER TO recsys_app;` and its kin, at a line's start. */
const OWNER = /\nALTER [A-Z ]+ \S.* OWNER TO /;
const GRANT = /\n(?:GRANT|REVOKE) /;
/** Enough of a line's start to find OWNER or GRANT split across chunks. */
const CARRY = 512;

export interface PlainDumpFacts {
  readonly serverVersion: string;
  readonly pgDumpVersion: string;
  readonly dumpOptions: DumpOptions;
  readonly verboseLines: number;
  readonly warnings: readonly string[];
  readonly restrictLock: AdoptedFrom['restrictLock'];
}

export class SpecDumpInspector {
  rawBytes = 0;
  private readonly own = new PlainDumpText({ adopted: lock('own') });
  private readonly added = new PlainDumpText({ adopted: lock('added') });
  private head = '';
  private tail = '';
  private carry = '';
  private owners = false;
  private grants = false;

  constructor() {
    this.own.begin();
    this.added.begin();
  }

  write(chunk: Buffer): void {
    this.rawBytes += chunk.length;
    this.added.write(chunk);
    this.see(this.own.write(chunk).toString('latin1'));
  }

  /** Ends the dump: its facts, or why a restore could not use it (a sentence after "the file …"). */
  end(): PlainDumpFacts | { problem: string } {
    this.see(this.own.end().toString('latin1'));
    this.added.end();
    if (this.rawBytes === 0) return { problem: 'is empty' };
    if (!HEADER.test(this.head))
      return {
        problem: `is not a pg_dump plain dump: no "-- PostgreSQL database dump" line in its first ${HEAD_BYTES / 1024} KiB`,
      };
    if (!this.tail.includes(END))
      return { problem: `does not end with "${END}": pg_dump did not finish it (truncated or failed)` };
    const ownProblem = this.own.problem();
    const restrictLock = ownProblem === undefined ? 'own' : 'added';
    const problem = ownProblem === undefined ? undefined : this.added.problem();
    if (problem !== undefined) return { problem: `is a plain dump that ${problem}` };
    const filter = this.own.filter!;
    const version = (what: string) =>
      new RegExp(`^-- Dumped ${what} version (\\S+)`, 'm').exec(this.head)?.[1] ?? 'unknown';
    return {
      serverVersion: version('from database'),
      pgDumpVersion: version('by pg_dump'),
      dumpOptions: { noOwner: !this.owners, noPrivileges: !this.grants },
      verboseLines: filter.removed,
      warnings: [...filter.warnings, ...filter.others.map((m) => `unrecognized: pg_dump: ${m}`)],
      restrictLock,
    };
  }

  /** Text as psql would read it (latin1: one character per byte). */
  private see(text: string): void {
    if (this.head.length < HEAD_BYTES) this.head += text.slice(0, HEAD_BYTES - this.head.length);
    this.tail = (this.tail + text).slice(-TAIL_BYTES);
    const window = this.carry + text;
    this.owners ||= OWNER.test(window);
    this.grants ||= GRANT.test(window);
    this.carry = window.slice(-CARRY);
  }
}

const lock = (restrictLock: AdoptedFrom['restrictLock']): AdoptedFrom => ({
  source: '',
  adoptedAt: new Date(0).toISOString(),
  verboseLines: 0,
  restrictLock,
});
