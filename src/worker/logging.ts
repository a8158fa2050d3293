import type { Logger, LogLevel, LogMetadata } from '@temporalio/common';
import { LogTimestamp } from '@temporalio/worker';
import pino from 'pino';
import { SECRET_VARIABLES, type Config, type LogFormatName, type LogLevelName } from '../config';

/**
 * The worker's log: pino behind the Temporal SDK's Logger interface, so the SDK's own lines, the
 * workflow `log` and the activity `Context.current().log` lines and the worker's own lines all
 * leave through one logger (src/worker/runtime.ts installs it as the Runtime's). JSON lines for log
 * collectors, or a short human format on a terminal. The SDK's context fields (workflowId, runId,
 * workflowType, activityType, activityId, attempt, namespace, taskQueue, sdkComponent) stay
 * top-level fields of each line.
 */

/** Where lines go: process.stdout by default; `isTTY` decides the `auto` format. */
export interface LogStream {
  write(line: string): unknown;
  isTTY?: boolean;
}

export interface LoggerOptions {
  level: LogLevelName;
  format: LogFormatName;
  /** Values never written, wherever they occur in a line (a message, an error, a field). */
  secrets?: readonly (string | undefined)[];
  /** Colours in the pretty format; the CLI decides (src/cli/output.ts useColor). */
  colour?: boolean;
  stream?: LogStream;
}

/** Field names (any case, at any depth of a line) whose values are secrets. */
export const SECRET_FIELDS: readonly string[] = [
  ...SECRET_VARIABLES,
  'password',
  'apiKey',
  'token',
  'slackWebhookUrl',
  'webhookUrl',
  'secretAccessKey',
  'sessionToken',
  'authorization',
  'cookie',
  'privateKey',
];
const SECRET_FIELD_SET = new Set(SECRET_FIELDS.map((name) => name.toLowerCase()));
export const REDACTED = '[Redacted]';
/** Deeper than this nothing is walked (a cycle ends here); value scrubbing still covers it. */
const MAX_REDACT_DEPTH = 8;

/**
 * A copy of a line's fields with every secret-named field's value replaced. Done here rather than
 * with pino's `redact` paths: those name fixed levels, and their wildcards cost 50-130 µs (`*.k`)
 * to 130-420 µs (`*.*.k`) a line for this list (measured on the 2-core dev machine), against under
 * 10 µs for a whole line with this walk of plain objects and arrays (errors and other class
 * instances are left to pino's serializers and the value scrubbing).
 */
export function redactFields(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object' || depth > MAX_REDACT_DEPTH) return value;
  if (Array.isArray(value)) return value.map((item) => redactFields(item, depth + 1));
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] =
      SECRET_FIELD_SET.has(key.toLowerCase()) && item !== undefined && item !== null
        ? REDACTED
        : redactFields(item, depth + 1);
  }
  return out;
}

/**
 * Shorter values are not scrubbed by value: a 1-3 character "secret" would garble every line and
 * protects nothing anyway. Their fields are still redacted by name.
 */
const MIN_SCRUBBED_LENGTH = 4;

/**
 * The secret values this process holds: the config's secrets and every SECRET_VARIABLES value of
 * the environment, plus AWS_ACCESS_KEY_ID (it names the credential; the secrets drill checks it too).
 */
export function knownSecrets(config: Config, env: NodeJS.ProcessEnv = process.env): string[] {
  const values = [
    config.pg.password,
    config.verifyPg?.password,
    config.temporal.apiKey,
    config.milvus.token,
    config.slackWebhookUrl,
    env.AWS_ACCESS_KEY_ID,
    ...[...SECRET_VARIABLES].map((name) => env[name]),
  ];
  return [...new Set(values.filter((v): v is string => typeof v === 'string'))];
}

/** Replaces every secret in a JSON line (as JSON escapes it: that is how it appears there). */
function scrubber(secrets: readonly (string | undefined)[]): (line: string) => string {
  const escaped = [
    ...new Set(
      secrets
        .filter((s): s is string => typeof s === 'string' && s.length >= MIN_SCRUBBED_LENGTH)
        .map((s) => JSON.stringify(s).slice(1, -1)),
    ),
  ].sort((a, b) => b.length - a.length); // a secret that contains another goes first
  if (escaped.length === 0) return (line) => line;
  return (line) =>
    escaped.reduce((text, s) => (text.includes(s) ? text.split(s).join(REDACTED) : text), line);
}

const PINO_LEVEL: Record<LogLevel, LogLevelName> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};
/** pino writes these itself: a field of the same name is renamed rather than written twice. */
const RESERVED = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

/** The Temporal SDK's Logger on top of pino. */
export class WorkerLogger implements Logger {
  /**
   * @param clock the time of the line being written, read by pino's `timestamp` option: the SDK's
   *   own timestamp of the entry when it passes one, else undefined (now)
   */
  constructor(
    private readonly pino: pino.Logger,
    private readonly clock: { lineTime?: string },
  ) {}

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    const name = PINO_LEVEL[level] ?? 'info';
    if (!this.pino.isLevelEnabled(name)) return;
    // Workflow lines queued through the SDK's sink, and core lines, carry when they happened.
    const { [LogTimestamp]: nanos, ...rest } = (meta ?? {}) as LogMetadata & {
      [LogTimestamp]?: bigint;
    };
    this.clock.lineTime =
      typeof nanos === 'bigint' ? new Date(Number(nanos / 1_000_000n)).toISOString() : undefined;
    try {
      this.pino[name](lineFields(rest), message);
    } finally {
      this.clock.lineTime = undefined;
    }
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}

/**
 * The SDK's metadata as top-level fields. An activity's line names its workflow's run
 * `workflowRunId`, a workflow's line `runId`: both become `runId`, so one query finds a run's lines.
 * The activity's task token is dropped: it completes the activity for whoever holds it.
 */
function lineFields(meta: Record<string, unknown>): Record<string, unknown> {
  const { taskToken: _token, workflowRunId, ...rest } = meta;
  const out: Record<string, unknown> = {};
  if (workflowRunId !== undefined && rest.runId === undefined) out.runId = workflowRunId;
  for (const [key, value] of Object.entries(rest)) out[RESERVED.has(key) ? `meta_${key}` : key] = value;
  return out;
}

export function createLogger(options: LoggerOptions): WorkerLogger {
  const stream = options.stream ?? process.stdout;
  const format = options.format === 'auto' ? (stream.isTTY ? 'pretty' : 'json') : options.format;
  const scrub = scrubber(options.secrets ?? []);
  const colour = options.colour ?? false;
  const destination = {
    write: (line: string) =>
      stream.write(format === 'pretty' ? prettyLine(scrub(line), colour) : scrub(line)),
  };
  const clock: { lineTime?: string } = {};
  const instance = pino(
    {
      level: options.level,
      timestamp: () => `,"time":"${clock.lineTime ?? new Date().toISOString()}"`,
      formatters: {
        level: (label) => ({ level: label }),
        log: (fields) => redactFields(fields) as Record<string, unknown>,
      },
      serializers: { err: pino.stdSerializers.errWithCause, error: pino.stdSerializers.errWithCause },
    },
    destination,
  );
  return new WorkerLogger(instance, clock);
}

/** The worker's logger from its config (level, format, and the secrets it holds). */
export function createWorkerLogger(config: Config, options: { colour?: boolean; stream?: LogStream } = {}) {
  return createLogger({
    level: config.log.level,
    format: config.log.format,
    secrets: knownSecrets(config),
    ...options,
  });
}

const SGR: Record<LogLevelName | 'dim', [string, string]> = {
  trace: ['\x1b[90m', '\x1b[39m'],
  debug: ['\x1b[90m', '\x1b[39m'],
  info: ['\x1b[32m', '\x1b[39m'],
  warn: ['\x1b[33m', '\x1b[39m'],
  error: ['\x1b[31m', '\x1b[39m'],
  dim: ['\x1b[2m', '\x1b[22m'],
};
const NOT_SHOWN = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

/** `HH:MM:SS.mmm LEVEL message key=value …` (local time), an error's stack indented below. */
export function prettyLine(json: string, colour: boolean): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json; // never lose a line
  }
  const paint = (text: string, style: keyof typeof SGR) =>
    colour ? `${SGR[style][0]}${text}${SGR[style][1]}` : text;
  const level = String(record.level);
  const time = typeof record.time === 'string' ? new Date(record.time) : new Date();
  const clock = [time.getHours(), time.getMinutes(), time.getSeconds()]
    .map((n) => String(n).padStart(2, '0'))
    .join(':');
  const head = `${clock}.${String(time.getMilliseconds()).padStart(3, '0')} ${paint(level.toUpperCase().padEnd(5), level in SGR ? (level as LogLevelName) : 'info')}`;
  const pairs: string[] = [];
  const stacks: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (NOT_SHOWN.has(key) || value === undefined) continue;
    if (isSerializedError(value)) {
      pairs.push(`${paint(`${key}=`, 'dim')}${JSON.stringify(`${value.type}: ${value.message}`)}`);
      // The stack's frames only: its first line repeats the type and message shown above.
      const frames = (value.stack ?? '').split('\n').filter((line) => /^\s+at /.test(line));
      if (frames.length) stacks.push(frames.map((line) => `    ${line.trim()}`).join('\n'));
    } else pairs.push(`${paint(`${key}=`, 'dim')}${prettyValue(value)}`);
  }
  const message = typeof record.msg === 'string' ? record.msg : '';
  return [`${head} ${message}${pairs.length ? ` ${pairs.join(' ')}` : ''}`, ...stacks]
    .join('\n')
    .concat('\n');
}

function prettyValue(value: unknown): string {
  return typeof value === 'string' && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
}

function isSerializedError(value: unknown): value is { type: string; message: string; stack?: string } {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { message?: unknown }).message === 'string' &&
    typeof (value as { type?: unknown }).type === 'string'
  );
}

let processLog: Logger | undefined;

/** The process's logger: the worker's once src/worker/runtime.ts installed it, else a default one. */
export function processLogger(): Logger {
  processLog ??= createLogger({ level: 'info', format: 'auto' });
  return processLog;
}

export function setProcessLogger(logger: Logger): void {
  processLog = logger;
}
