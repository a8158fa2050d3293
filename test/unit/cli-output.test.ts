import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { CommanderError } from 'commander';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../../src/cli/main';
import { createProgress, formatTable, plural, printTable, useColor } from '../../src/cli/output';
import { decidedText } from '../../src/cli/commands/restore/print';
import { packageVersion } from '../../src/build-info';

const ROOT = path.resolve(__dirname, '../..');
const ESC = '\x1b[';

/** A stream that records what is written; `isTTY` as a terminal's or a pipe's. */
function sink(isTTY: boolean): Writable & { isTTY: boolean; columns: number; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return Object.assign(stream, { isTTY, columns: 100, text: () => chunks.join('') });
}

const HEAD = ['id', 'status'];
const ROWS = [
  ['recsys_20260101_000000', 'verified'],
  ['recsys_20260102_000000', null],
];

// Each test sets the colour variables it needs; none leaks in from the shell that runs vitest.
beforeEach(() => {
  vi.stubEnv('NO_COLOR', undefined);
  vi.stubEnv('FORCE_COLOR', undefined);
  vi.stubEnv('TERM', 'xterm-256color');
});
afterEach(() => {
  vi.unstubAllEnvs();
});

describe('useColor: the one rule', () => {
  const tty = { isTTY: true } as unknown as NodeJS.WritableStream;
  const pipe = { isTTY: undefined } as unknown as NodeJS.WritableStream;

  it('colours a terminal, not a pipe', () => {
    expect(useColor(tty, { TERM: 'xterm' })).toBe(true);
    expect(useColor(pipe, { TERM: 'xterm' })).toBe(false);
    expect(useColor(tty, { TERM: 'dumb' })).toBe(false);
  });

  it('NO_COLOR with any non-empty value turns colour off, an empty one does not', () => {
    expect(useColor(tty, { NO_COLOR: '1' })).toBe(false);
    expect(useColor(tty, { NO_COLOR: 'false' })).toBe(false);
    expect(useColor(tty, { NO_COLOR: '' })).toBe(true);
    expect(useColor(tty, { NO_COLOR: '1', FORCE_COLOR: '1' })).toBe(false);
  });

  it('FORCE_COLOR forces colour on (also into a pipe) or, with 0/false, off', () => {
    expect(useColor(pipe, { FORCE_COLOR: '1' })).toBe(true);
    expect(useColor(pipe, { FORCE_COLOR: '' })).toBe(true);
    expect(useColor(tty, { FORCE_COLOR: '0' })).toBe(false);
    expect(useColor(tty, { FORCE_COLOR: 'false' })).toBe(false);
  });
});

describe('tables', () => {
  const plain = formatTable(HEAD, ROWS, false);

  it('are plain text into a pipe', () => {
    const out = sink(false);
    printTable(HEAD, ROWS, out);
    expect(out.text()).not.toContain(ESC);
    expect(out.text()).toBe(`${plain}\n`);
    expect(out.text()).toContain('│ recsys_20260101_000000 │ verified │');
  });

  it('are plain text on a terminal when NO_COLOR is set', () => {
    vi.stubEnv('NO_COLOR', '1');
    const out = sink(true);
    printTable(HEAD, ROWS, out);
    expect(out.text()).not.toContain(ESC);
    expect(out.text()).toBe(`${plain}\n`);
  });

  it('are plain text on a terminal when FORCE_COLOR=0', () => {
    vi.stubEnv('FORCE_COLOR', '0');
    const out = sink(true);
    printTable(HEAD, ROWS, out);
    expect(out.text()).not.toContain(ESC);
  });

  it('have a cyan header and grey borders on a terminal, the same text otherwise', () => {
    const out = sink(true);
    printTable(HEAD, ROWS, out);
    const text = out.text();
    expect(text).toContain('\x1b[36mid\x1b[39m');
    expect(text).toContain('\x1b[90m┌');
    // eslint-disable-next-line no-control-regex
    expect(text.replace(/\x1b\[\d+m/g, '')).toBe(`${plain}\n`);
  });

  it('are coloured into a pipe when FORCE_COLOR is set', () => {
    vi.stubEnv('FORCE_COLOR', '1');
    const out = sink(false);
    printTable(HEAD, ROWS, out);
    expect(out.text()).toContain('\x1b[36mid\x1b[39m');
  });
});

describe('progress', () => {
  function run(out: ReturnType<typeof sink>) {
    let now = 0;
    const bar = createProgress({
      format: 'seeding {bar} {percentage}% | {value}/{total} rows | {table}',
      plainFormat: 'seeding: {percentage}% | {value}/{total} rows | {table}',
      stream: out,
      plainIntervalMs: 1000,
      now: () => now,
    });
    bar.start(200, 0, { table: 'users' });
    now = 500;
    bar.update(50, { table: 'users' }); // within the interval: not written
    now = 1500;
    bar.update(100, { table: 'items' });
    now = 1600;
    bar.update(150); // within the interval again
    bar.stop(); // the final state is always written
    bar.stop();
    return out.text();
  }

  const expected = [
    'seeding: 0% | 0/200 rows | users',
    'seeding: 50% | 100/200 rows | items',
    'seeding: 75% | 150/200 rows | items',
    '',
  ].join('\n');

  it('writes plain, throttled lines into a pipe', () => {
    const text = run(sink(false));
    expect(text).not.toContain(ESC);
    expect(text).toBe(expected);
  });

  it('writes the same plain lines on a terminal when NO_COLOR is set', () => {
    vi.stubEnv('NO_COLOR', '1');
    const text = run(sink(true));
    expect(text).not.toContain(ESC);
    expect(text).toBe(expected);
  });

  it('writes nothing when never started', () => {
    const out = sink(false);
    createProgress({ format: '{value}', stream: out }).stop();
    expect(out.text()).toBe('');
  });

  it('draws a live bar (cursor movement) on a terminal without NO_COLOR', () => {
    const out = sink(true);
    const bar = createProgress({ format: 'restore [{bar}] {step}/{steps} {phase}', stream: out });
    bar.start(4, 1, { step: 1, steps: 4, phase: 'restoring' });
    bar.stop();
    expect(out.text()).toContain(ESC);
    expect(out.text()).toContain('1/4 restoring');
  });

  it('draws no live bar into a pipe even with FORCE_COLOR', () => {
    vi.stubEnv('FORCE_COLOR', '1');
    const out = sink(false);
    const bar = createProgress({ format: '[{bar}] {value}', plainFormat: 'at {value}', stream: out });
    bar.start(4, 1);
    bar.stop();
    expect(out.text()).toBe('at 1\n');
  });
});

describe('dbops --version', () => {
  const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    version: string;
  };

  async function parse(...args: string[]): Promise<{ out: string; exit?: CommanderError }> {
    let out = '';
    const program = buildProgram()
      .exitOverride()
      .configureOutput({ writeOut: (s) => (out += s) });
    try {
      await program.parseAsync(['node', 'dbops', ...args]);
      return { out };
    } catch (err) {
      if (!(err instanceof CommanderError)) throw err;
      return { out, exit: err };
    }
  }

  it.each(['--version', '-V'])('%s prints exactly the package.json version', async (flag) => {
    const { out, exit } = await parse(flag);
    expect(exit?.code).toBe('commander.version');
    expect(exit?.exitCode).toBe(0);
    expect(out).toBe(`${version}\n`);
  });

  it('finds package.json from src/cli (tsx) and from dist/src/cli (bin/dbops.js)', () => {
    expect(packageVersion(path.join(ROOT, 'src', 'cli'))).toBe(version);
    expect(packageVersion(path.join(ROOT, 'dist', 'src', 'cli'))).toBe(version);
    expect(packageVersion('/')).toBe('unknown');
  });

  it('leaves `baseline --version <v>` to the baseline command', async () => {
    let seen: unknown;
    const program = buildProgram().exitOverride();
    program.commands
      .find((c) => c.name() === 'baseline')!
      .action((opts: { version: string }) => {
        seen = opts.version;
      });
    await program.parseAsync(['node', 'dbops', 'baseline', '--version', '3']);
    expect(seen).toBe('3');
  });
});

describe('messages', () => {
  const at = '2026-01-02T03:04:05.000Z';

  it('a rejected restore reads "rejected by", an approved one "approved by"', () => {
    expect(decidedText({ decision: 'reject', by: 'bob', at, signer: null })).toBe(
      `rejected by bob (unsigned) at ${at}`,
    );
    const signer = { principal: 'alice', fingerprint: 'SHA256:abc' };
    expect(decidedText({ decision: 'approve', by: 'alice', at, signer })).toBe(
      `approved by alice (signed, key SHA256:abc) at ${at}`,
    );
  });

  it('counts with the right plural', () => {
    expect(plural(1, 'backup')).toBe('1 backup');
    expect(plural(0, 'backup')).toBe('0 backups');
    expect(plural(2, 'batch', 'batches')).toBe('2 batches');
  });
});
