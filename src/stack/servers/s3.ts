/** versitygw: S3 API over a folder. */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

import { HOST, httpGet } from '../health';
import { spawnDetached } from '../procs';
import { PORTS, S3_ACCESS_KEY, S3_BUCKET, S3_SECRET_KEY, type ServerDef } from './types';

// ---------------------------------------------------------------------------------------------
// versitygw: S3 API over a folder, one subfolder per bucket.

export const s3: ServerDef = {
  name: 's3',
  address: `http://${HOST}:${PORTS.s3}`,
  port: PORTS.s3,
  otherPorts: [],
  startTimeoutMs: 30_000,
  stopGraceMs: 10_000,
  signature: (ctx) => ['versitygw', ctx.p.s3Data],
  extraLogs: () => [],
  prepare: async (ctx) => {
    mkdirSync(path.join(ctx.p.s3Data, S3_BUCKET), { recursive: true, mode: 0o755 });
  },

  async start(ctx) {
    const { p } = ctx;
    // Keys via the environment, never argv (argv is world-readable in ps).
    return spawnDetached(p.versitygw, ['--port', `${HOST}:${PORTS.s3}`, 'posix', p.s3Data], {
      logFile: p.logFile('s3'),
      cwd: p.data,
      env: { ...process.env, ROOT_ACCESS_KEY: S3_ACCESS_KEY, ROOT_SECRET_KEY: S3_SECRET_KEY },
    });
  },

  async healthy() {
    const answer = await httpGet(`http://${HOST}:${PORTS.s3}/`);
    return answer !== undefined && answer.status > 0;
  },

  async afterStart(ctx) {
    if (!existsSync(path.join(ctx.p.s3Data, S3_BUCKET))) {
      mkdirSync(path.join(ctx.p.s3Data, S3_BUCKET), { recursive: true, mode: 0o755 });
    }
  },

  adopt: () => undefined,
  stop: async () => false,
};
