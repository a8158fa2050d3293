/**
 * npm run stack -- up|down|status|logs|env
 *
 * Installs (idempotently) and runs the dev stack: PostgreSQL 18, the Temporal dev server with its
 * Web UI, Milvus 2.3 and versitygw (S3), all on 127.0.0.1 and non-standard ports, with their data,
 * logs and PID files under the stack home (see paths.ts).
 */
import { existsSync, mkdirSync } from 'node:fs';

import { Command, Option } from 'commander';

import { exitQuietlyOnBrokenPipe } from '../stdio';
import { buildEnv, exportLines, readEnvJson, removeEnvJson, writeEnvJson } from './envvars';
import { installAll, pgBinDirFromMarker } from './install';
import { homeForRead, prepareHome, SERVER_NAMES, stackPaths, type ServerName } from './paths';
import { PORTS, SERVERS } from './servers';
import { startWorker, stopWorker, WORKER, workerStatus, type WorkerStatus } from './worker';
import {
  checkPostgresReach,
  ensureStarted,
  makeContext,
  seconds,
  StartError,
  statusOf,
  stopServerIn,
  tailLines,
  withLock,
  type ServerStatus,
} from './stack';

const say = (line = '') => process.stdout.write(`${line}\n`);
const warn = (line: string) => process.stderr.write(`${line}\n`);

class ExitError extends Error {}

function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

type Row = Pick<ServerStatus, 'state' | 'pid' | 'address' | 'log' | 'note'> & { name: string };

function statusTable(statuses: Row[]): string {
  return table([
    ['SERVER', 'ADDRESS', 'STATE', 'PID', 'LOG'],
    ...statuses.map((s) => [s.name, s.address, s.state, s.pid === null ? '-' : String(s.pid), s.log]),
  ]);
}

function serverArg(name: string | undefined): ServerName[] {
  if (name === undefined) return [...SERVER_NAMES];
  if (!(SERVER_NAMES as readonly string[]).includes(name)) {
    throw new ExitError(`unknown server "${name}": one of ${SERVER_NAMES.join(', ')}`);
  }
  return [name as ServerName];
}

const workerRow = (w: WorkerStatus): Row => ({ name: WORKER, ...w });

function printStartError(err: StartError): void {
  warn(err.message);
  for (const log of err.logs) {
    const tail = tailLines(log, 20);
    if (!tail) continue;
    warn(`--- last 20 lines of ${log}`);
    warn(tail);
  }
}

async function up(name: string | undefined): Promise<void> {
  const names = serverArg(name);
  const t0 = Date.now();
  const home = await prepareHome(say);
  const ctx = makeContext(home);
  const { p } = ctx;
  for (const dir of [p.run, p.logs, p.data]) mkdirSync(dir, { recursive: true, mode: 0o755 });

  await withLock(p, async () => {
    say(`stack home: ${home}`);
    try {
      await installAll(p, (r) =>
        say(
          `install ${r.step.padEnd(10)} ${r.skipped ? 'already installed' : 'installed'} (${seconds(r.ms)})  ${r.detail}`,
        ),
      );
    } catch (err) {
      throw new ExitError(err instanceof Error ? err.message : String(err));
    }
    await checkPostgresReach(ctx).catch((err: unknown) => {
      throw new ExitError(err instanceof Error ? err.message : String(err));
    });

    const settled = await Promise.allSettled(
      names.map(async (n) => {
        const status = await ensureStarted(ctx, SERVERS[n]);
        say(`${n.padEnd(9)} ${status.note ?? status.state}`);
        return status;
      }),
    );
    const statuses: ServerStatus[] = [];
    const failures: StartError[] = [];
    settled.forEach((r, i) => {
      const n = names[i] as ServerName;
      if (r.status === 'fulfilled') {
        statuses.push(r.value);
      } else {
        const err =
          r.reason instanceof StartError ? r.reason : new StartError(n, String(r.reason), [p.logFile(n)]);
        failures.push(err);
        statuses.push({
          name: n,
          state: 'stopped',
          pid: null,
          address: SERVERS[n].address,
          log: p.logFile(n),
        });
      }
    });

    say();
    say(statusTable(statuses));
    if (failures.length > 0) {
      say();
      failures.forEach(printStartError);
      throw new ExitError(`stack up failed (${failures.map((f) => f.server).join(', ')})`);
    }

    const env = buildEnv(p, await ctx.pgBin());
    writeEnvJson(p, env);
    say();
    say(`Temporal Web UI: ${env.DBOPS_TEMPORAL_UI_URL}`);
    say(`Environment (eval "$(npm run -s stack -- env)"), also in ${p.envJson}:`);
    for (const line of exportLines(env)) say(`  ${line}`);
    say();
    say(`stack up in ${seconds(Date.now() - t0)}`);
  });
}

async function down(name: string | undefined): Promise<void> {
  const ctx = makeContext();
  if (!existsSync(ctx.p.home)) {
    say(`no stack home at ${ctx.p.home}: nothing to stop`);
    return;
  }
  // The worker first: stopped after Temporal, it would retry the lost server until killed.
  const withWorker = name === undefined || name === WORKER;
  const names = name === WORKER ? [] : serverArg(name);
  await withLock(ctx.p, async () => {
    let failed = false;
    if (withWorker) {
      try {
        say(`${WORKER.padEnd(9)} ${await stopWorker(ctx.p)}`);
      } catch (err) {
        failed = true;
        warn(`${WORKER} failed to stop: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const results = await Promise.allSettled(names.map((n) => stopServerIn(ctx, SERVERS[n])));
    results.forEach((r, i) => {
      const n = names[i] ?? '';
      if (r.status === 'fulfilled') say(`${n.padEnd(9)} ${r.value}`);
      else {
        failed = true;
        warn(`${n} failed to stop: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}`);
      }
    });
    if (name === undefined && !failed) removeEnvJson(ctx.p);
    if (failed) throw new ExitError('stack down failed');
  });
}

async function worker(): Promise<void> {
  const ctx = makeContext();
  if (!readEnvJson(ctx.p.home)) throw new ExitError('the dev stack is not up: run npm run stack -- up first');
  await withLock(ctx.p, async () => {
    try {
      say(`${WORKER.padEnd(9)} ${await startWorker(ctx.p)}`);
    } catch (err) {
      throw new ExitError(err instanceof Error ? err.message : String(err));
    }
  });
  const w = await workerStatus(ctx.p);
  say(`log: ${w.log}; health: ${w.address}; stop it with: npm run stack -- down worker`);
}

async function status(json: boolean): Promise<void> {
  const ctx = makeContext();
  const [statuses, w] = await Promise.all([
    Promise.all(SERVER_NAMES.map((n) => statusOf(ctx, SERVERS[n]))),
    workerStatus(ctx.p),
  ]);
  if (json) {
    say(JSON.stringify({ home: ctx.p.home, servers: statuses, worker: w }, null, 2));
    return;
  }
  say(`stack home: ${ctx.p.home}`);
  say(statusTable([...statuses, workerRow(w)]));
  for (const s of [...statuses, workerRow(w)]) if (s.note) say(`${s.name}: ${s.note}`);
  if (statuses.some((s) => s.name === 'temporal' && s.state === 'running')) {
    say(`Temporal Web UI: http://127.0.0.1:${PORTS.temporalUi}`);
  }
}

function logs(name: string | undefined, lines: number): void {
  const ctx = makeContext();
  for (const n of serverArg(name)) {
    const def = SERVERS[n];
    for (const file of [ctx.p.logFile(n), ...def.extraLogs(ctx)]) {
      if (!existsSync(file)) continue;
      say(`==> ${n}: ${file} <==`);
      say(tailLines(file, lines));
      say();
    }
  }
}

function env(): void {
  // stdout carries only `export` lines: eval "$(npm run -s stack -- env)".
  const home = homeForRead();
  const p = stackPaths(home);
  const recorded = readEnvJson(home);
  if (recorded) {
    for (const line of exportLines(recorded)) say(line);
    return;
  }
  const bin = pgBinDirFromMarker(p);
  if (!bin) throw new ExitError(`dev stack not installed in ${home}: run npm run stack -- up`);
  warn('warning: the dev stack is not up (no stack.env.json): run npm run stack -- up');
  for (const line of exportLines(buildEnv(p, bin))) say(line);
}

async function main(argv: string[]): Promise<void> {
  exitQuietlyOnBrokenPipe();
  if (process.getuid?.() === 0) process.umask(0o022); // folders and files must stay readable by `postgres`
  const program = new Command('stack')
    .description('dbops dev stack: PostgreSQL, Temporal (+ Web UI), Milvus and S3 on 127.0.0.1')
    .showHelpAfterError();
  program
    .command('up')
    .description('install what is missing, start what is not running, wait until healthy')
    .argument('[server]', SERVER_NAMES.join('|'))
    .action(up);
  program
    .command('down')
    .description('stop the worker and the servers this stack started (all, or one)')
    .argument('[server]', [...SERVER_NAMES, WORKER].join('|'))
    .action(down);
  program
    .command(WORKER)
    .description(
      `start a dbops worker in the background with this shell's settings (log and PID file in the stack home, health on port ${PORTS.worker})`,
    )
    .action(worker);
  program
    .command('status')
    .description('state of each server')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => status(opts.json === true));
  program
    .command('logs')
    .description('tail of the server logs')
    .argument('[server]', SERVER_NAMES.join('|'))
    .addOption(new Option('-n, --lines <n>', 'lines per log').default('50'))
    .action((name: string | undefined, opts: { lines: string }) => {
      const n = Number.parseInt(opts.lines, 10);
      if (!Number.isInteger(n) || n < 1)
        throw new ExitError(`-n must be a positive number, not "${opts.lines}"`);
      logs(name, n);
    });
  program.command('env').description('export lines for the running stack (for eval)').action(env);
  await program.parseAsync(argv);
}

main(process.argv).catch((err: unknown) => {
  if (err instanceof ExitError) warn(err.message);
  else warn(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
});
