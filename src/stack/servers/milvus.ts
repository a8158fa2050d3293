/** Milvus 2.3.5 standalone (milvus wheel). */
import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { connectMilvus } from '../../../activities/milvus/client';
import { HOST, httpGet, tcpOpen } from '../health';
import { spawnDetached } from '../procs';
import { noop, PORTS, type ServerDef } from './types';

// ---------------------------------------------------------------------------------------------
// Milvus 2.3.5 standalone (milvus wheel: a Python wrapper that runs the milvus binary).

/**
 * `milvus-server`, except that the wrapper's free-port probe sets SO_REUSEADDR as the Go server
 * itself does. Without it, a port left in TIME_WAIT by the previous run (any restart while
 * clients were connected) fails the probe and the wrapper silently moves that component to
 * another port: the proxy then listens off 19531, or etcd off 2379, and the server never
 * becomes healthy.
 */
const MILVUS_LAUNCHER = `# dbops dev stack: milvus-server launcher
import socket, sys
import milvus

def try_bind_port(self, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(('127.0.0.1', port))
        sock.listen()
        return sock
    except OSError:
        sock.close()
        return None

milvus.MilvusServerConfig.try_bind_port = try_bind_port
sys.argv[0] = 'milvus-server'
sys.exit(milvus.main())
`;

export const milvus: ServerDef = {
  name: 'milvus',
  address: `${HOST}:${PORTS.milvus}`,
  port: PORTS.milvus,
  // The wrapper moves any taken port to the next free one; we probe 9091 and need etcd where we expect it.
  otherPorts: [PORTS.milvusHealth, PORTS.milvusEtcd],
  startTimeoutMs: 120_000,
  // Its graceful stop stops rootcoord first and then hangs (up to common.gracefulStopTimeout,
  // 1800 s) while the other components retry it: give it a moment, then kill the group.
  stopGraceMs: 10_000,
  signature: (ctx) => ['milvus-server', ctx.p.milvusData],
  extraLogs: (ctx) => [
    path.join(ctx.p.milvusData, 'logs', 'milvus-stdout.log'),
    path.join(ctx.p.milvusData, 'logs', 'milvus-stderr.log'),
  ],
  prepare: async (ctx) => {
    mkdirSync(ctx.p.milvusData, { recursive: true, mode: 0o755 });
  },

  async start(ctx) {
    const { p } = ctx;
    const components = [
      'rootCoord',
      'proxy',
      'queryCoord',
      'queryNode',
      'indexNode',
      'dataCoord',
      'dataNode',
    ];
    const args = [
      '-c',
      MILVUS_LAUNCHER,
      '--data',
      p.milvusData,
      '--proxy-port',
      String(PORTS.milvus),
      ...components.flatMap((c) => ['--extra-config', `${c}.ip=${HOST}`]),
      // Compaction is dbops' job (the nightly maintenance workflow): with the server's own background
      // compaction off, what maintenance merges is deterministic and observable in tests.
      '--extra-config',
      'dataCoord.compaction.enableAutoCompaction=false',
    ];
    return spawnDetached(path.join(p.venvBin, 'python'), args, { logFile: p.logFile('milvus'), cwd: p.home });
  },

  async healthy() {
    if (!(await tcpOpen(PORTS.milvus))) return false;
    const answer = await httpGet(`http://${HOST}:${PORTS.milvusHealth}/healthz`);
    if (!(answer?.status === 200 && answer.body.includes('OK'))) return false;
    // /healthz answers OK before every component has registered ("session not found->datanode");
    // clients check gRPC CheckHealth, so "up" waits until that says healthy too.
    try {
      (
        await connectMilvus({ address: `${HOST}:${PORTS.milvus}`, token: undefined, timeoutMs: 5000 })
      ).closeConnection();
      return true;
    } catch {
      return false;
    }
  },

  afterStart: noop,
  adopt: () => undefined,
  stop: async () => false,
};
