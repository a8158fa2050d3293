import { type Preset, SingleBar } from 'cli-progress';
import Table from 'cli-table3';
import { ConfigError } from '../config';
import { failureTypeOf, rootMessage } from '../../common/failures';

// The CLI's output helpers in one import; the wording itself is shared with src/client/ (reports it returns).
export { humanBytes, humanDuration, plural } from '../../common/text';

/** A stream the CLI writes to; `isTTY` is true on a terminal (tty.WriteStream). */
export type OutputStream = NodeJS.WritableStream & { isTTY?: boolean };

/**
 * THE rule for escape sequences (colours, and the cursor movement of live progress bars) written
 * to `stream`; every coloured or animated output of the CLI asks it, each for its own stream:
 * 1. `NO_COLOR` set to anything non-empty: never (https://no-color.org);
 * 2. else `FORCE_COLOR` set: `0` or `false` never, any other value (also empty) always;
 * 3. else only when the stream is a terminal and `TERM` is not `dumb`.
 * Cursor movement additionally needs a real terminal: FORCE_COLOR cannot make a pipe one.
 */
export function useColor(
  stream: OutputStream = process.stdout,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false';
  return stream.isTTY === true && env.TERM !== 'dumb';
}

const SGR = { cyan: ['\x1b[36m', '\x1b[39m'], grey: ['\x1b[90m', '\x1b[39m'] } as const;

function paint(text: string, colour: keyof typeof SGR): string {
  const [open, close] = SGR[colour];
  return `${open}${text}${close}`;
}

/** Runs of cli-table3's default border characters. */
const BORDER_RUN = /[─│┌┐└┘├┤┬┴┼]+/g;

type Cell = string | number | boolean | null | undefined;

/**
 * A table with a cyan header and grey borders when `colour`, else plain text. The colours are
 * applied here, not by cli-table3: its colour library decides once, at load, from the environment
 * without looking at the stream, so it would colour pipes and ignore NO_COLOR.
 */
export function formatTable(head: string[], rows: Cell[][], colour: boolean): string {
  const table = new Table({
    head: colour ? head.map((h) => paint(h, 'cyan')) : head,
    style: { head: [], border: [] },
  });
  for (const row of rows)
    table.push(row.map((cell) => (cell === null || cell === undefined ? '' : String(cell))));
  const text = table.toString();
  return colour ? text.replace(BORDER_RUN, (run) => paint(run, 'grey')) : text;
}

export function printTable(head: string[], rows: Cell[][], stream: OutputStream = process.stdout): void {
  stream.write(`${formatTable(head, rows, useColor(stream))}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

type ProgressPayload = Record<string, string | number>;

/** The part of cli-progress's SingleBar the commands use. */
export interface Progress {
  start(total: number, value: number, payload?: ProgressPayload): void;
  update(value: number, payload?: ProgressPayload): void;
  setTotal(total: number): void;
  stop(): void;
}

export interface ProgressOptions {
  /** cli-progress format of the live bar: `{bar}`, `{value}`, `{total}`, `{percentage}`, payload keys. */
  readonly format: string;
  /** Format of the plain lines written when there is no live bar (default `format`; `{bar}` is not drawn there). */
  readonly plainFormat?: string;
  readonly preset?: Preset;
  readonly hideCursor?: boolean;
  /** Default process.stderr. */
  readonly stream?: OutputStream;
  /** Least time between two plain lines (default 10 s); the first and the final state are always written. */
  readonly plainIntervalMs?: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly now?: () => number;
}

/**
 * A live cli-progress bar on a terminal that allows escape sequences (`useColor`); anywhere else
 * (a pipe, a log file, NO_COLOR) plain lines, at most one per interval and only when they change.
 */
export function createProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  if (stream.isTTY === true && useColor(stream, options.env)) {
    return new SingleBar(
      { format: options.format, hideCursor: options.hideCursor ?? false, stream },
      options.preset,
    );
  }
  return new PlainProgress(
    stream,
    options.plainFormat ?? options.format,
    options.plainIntervalMs ?? 10_000,
    options.now ?? Date.now,
  );
}

class PlainProgress implements Progress {
  private total = 0;
  private value = 0;
  private payload: ProgressPayload = {};
  private active = false;
  private lastLine: string | undefined;
  private lastAt = 0;

  constructor(
    private readonly stream: OutputStream,
    private readonly format: string,
    private readonly intervalMs: number,
    private readonly now: () => number,
  ) {}

  start(total: number, value: number, payload: ProgressPayload = {}): void {
    this.total = total;
    this.value = value;
    this.payload = { ...payload };
    this.active = true;
    this.write(true);
  }

  update(value: number, payload: ProgressPayload = {}): void {
    if (!this.active) return;
    this.value = value;
    Object.assign(this.payload, payload);
    this.write(false);
  }

  setTotal(total: number): void {
    this.total = total;
  }

  stop(): void {
    if (!this.active) return;
    this.write(true);
    this.active = false;
  }

  private write(always: boolean): void {
    const percentage = this.total > 0 ? Math.floor(Math.min(1, this.value / this.total) * 100) : 0;
    const values: ProgressPayload = {
      ...this.payload,
      value: this.value,
      total: this.total,
      percentage,
    };
    const line = this.format
      .replace(/\{(\w+)\}/g, (placeholder, key: string) =>
        key in values ? String(values[key]) : placeholder,
      )
      .trimEnd();
    const now = this.now();
    if (line === this.lastLine || (!always && now - this.lastAt < this.intervalMs)) return;
    this.stream.write(`${line}\n`);
    this.lastLine = line;
    this.lastAt = now;
  }
}

/** Exit codes: 1 operation failed, 2 bad input or configuration. */
export function reportError(err: unknown): number {
  if (err instanceof ConfigError) {
    process.stderr.write(`dbops: ${err.message}\n`);
    return 2;
  }
  const type = failureTypeOf(err);
  const message = rootMessage(err);
  process.stderr.write(`dbops: ${type ? `[${type}] ` : ''}${message}\n`);
  return type === 'InvalidInput' || type === 'NotFound' || type === 'Misconfigured' ? 2 : 1;
}
