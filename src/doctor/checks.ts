import { randomUUID } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config';
import { withMilvus } from '../../activities/milvus/client';
import { resolvePgBinaries } from '../../activities/postgres/binaries';
import { serverMajorVersion, withPg } from '../../activities/postgres/connection';
import { pgSecurity } from '../../activities/postgres/tls';
import { temporalSecurity } from '../../activities/temporal-connection';
import { buildInfo } from '../build-info';
import { withClient } from '../client/connection';
import { rootMessage } from '../../common/failures';
import { milvusSecurity, s3Security } from './security';
import { manifestKeyCheck, restoreApprovalsCheck } from './signing';
import type { Check, CheckContext, CheckResult } from './types';
import { describeWorkerBuilds } from './worker-builds';

export type { CheckResult, CheckStatus } from './types';

/** Per-check deadline; the clients' own timeouts are shorter so they fail (and clean up) first. */
const TIMEOUT_MS = 20_000;
const CLIENT_TIMEOUT_MS = 12_000;

function withTimeout<T>(promise: Promise<T>, what: string, ms = TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const checks: Check[] = [
  {
    name: 'postgresql',
    required: true,
    async run(ctx) {
      const { pg } = ctx.config;
      return withPg(pg, pg.database, async (client) => {
        ctx.serverMajor = await serverMajorVersion(client);
        const version =
          (await client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ??
          '?';
        const ext = await client.query<{ name: string }>(
          "SELECT name FROM pg_available_extensions WHERE name IN ('vector', 'pg_trgm')",
        );
        const available = new Set(ext.rows.map((r) => r.name));
        const missing = ['vector', 'pg_trgm'].filter((e) => !available.has(e));
        const ssl = await client.query<{ ssl: boolean }>(
          'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
        );
        const security = pgSecurity(ssl.rows[0]?.ssl === true, pg.sslmode, pg.ssl);
        const where = `${pg.host}:${pg.port}/${pg.database} (connection: ${security})`;
        if (missing.length) {
          return {
            status: 'fail',
            detail: `${where}: PostgreSQL ${version}, extension(s) not available: ${missing.join(', ')}`,
            hint: `install ${missing.map((m) => (m === 'vector' ? 'pgvector' : m)).join(' and ')} on the server (e.g. the postgresql-${ctx.serverMajor}-pgvector package)`,
          };
        }
        return { detail: `${where}: PostgreSQL ${version}; pgvector and pg_trgm available` };
      });
    },
    hint: ({ config }) =>
      `start PostgreSQL (npm run stack -- up) or set PGHOST/PGPORT/PGUSER/PGDATABASE (or DATABASE_URL); now ${config.pg.host}:${config.pg.port}`,
  },
  {
    name: 'pg client tools',
    required: true,
    async run(ctx) {
      if (ctx.serverMajor === undefined) {
        return { status: 'skip', detail: 'needs a reachable PostgreSQL to know the server version' };
      }
      const bins = await resolvePgBinaries(ctx.config.pg.binDir, ctx.serverMajor);
      return { detail: `pg_dump/pg_restore/psql ${bins.version} in ${bins.dir} (server ${ctx.serverMajor})` };
    },
    hint: ({ serverMajor }) =>
      `set DBOPS_PG_BIN_DIR to the bin folder of PostgreSQL ${serverMajor ?? 'N'} or newer (pg_dump refuses newer servers)`,
  },
  {
    name: 'temporal',
    required: true,
    async run({ config }) {
      return withClient(config, async (client) => {
        const ns = await client.workflowService.describeNamespace({ namespace: config.temporal.namespace });
        const sys = await client.workflowService.getSystemInfo({});
        return {
          detail: `${config.temporal.address}: server ${sys.serverVersion || '?'}, namespace "${ns.namespaceInfo?.name ?? config.temporal.namespace}" present; Web UI ${config.temporal.uiUrl}; connection: ${temporalSecurity(config.temporal)}`,
        };
      });
    },
    hint: ({ config }) =>
      `start Temporal (npm run stack -- up) or set DBOPS_TEMPORAL_ADDRESS / DBOPS_TEMPORAL_NAMESPACE (now ${config.temporal.address}, namespace ${config.temporal.namespace})`,
  },
  {
    name: 'worker',
    required: true,
    async run({ config }) {
      return withClient(config, async (client) => {
        const r = await client.workflowService.describeTaskQueue({
          namespace: config.temporal.namespace,
          taskQueue: { name: config.temporal.taskQueue, kind: 1 },
          taskQueueType: 1,
        });
        const pollers = r.pollers ?? [];
        if (!pollers.length) {
          return { status: 'fail', detail: `no worker is polling task queue "${config.temporal.taskQueue}"` };
        }
        const { status, detail } = describeWorkerBuilds(
          pollers.map((p) => p.identity ?? '?'),
          buildInfo().id,
        );
        return { status, detail: `task queue "${config.temporal.taskQueue}": ${detail}` };
      });
    },
    hint: ({ config }) =>
      `start a worker: dbops worker (task queue ${config.temporal.taskQueue}, DBOPS_TASK_QUEUE)`,
  },
  {
    name: 'milvus',
    required: true,
    async run({ config }) {
      const { address, token, tls } = config.milvus;
      return withMilvus({ address, token, tls, timeoutMs: CLIENT_TIMEOUT_MS }, async (client) => {
        const version = await client.getVersion();
        return {
          detail: `${address}: Milvus ${version.version}; connection: ${milvusSecurity(config.milvus)}`,
        };
      });
    },
    hint: ({ config }) =>
      `start Milvus (npm run stack -- up) or set DBOPS_MILVUS_ADDRESS (now ${config.milvus.address})`,
  },
  {
    name: 'backup storage',
    required: true,
    async run({ config }) {
      const storage = config.storage;
      if (storage.kind === 'local') {
        await probeFolder(storage.dir);
        return { detail: `local folder ${storage.dir} is writable` };
      }
      // Loaded on use: every CLI command (the worker too) imports this module.
      const { DeleteObjectCommand, PutObjectCommand, S3Client } = await import('@aws-sdk/client-s3');
      const s3 = new S3Client({
        region: storage.region,
        endpoint: storage.endpoint,
        forcePathStyle: storage.forcePathStyle,
      });
      try {
        const key = `${storage.prefix ? `${storage.prefix}/` : ''}.dbops-doctor-${randomUUID()}`;
        await s3.send(new PutObjectCommand({ Bucket: storage.bucket, Key: key, Body: 'probe' }));
        await s3.send(new DeleteObjectCommand({ Bucket: storage.bucket, Key: key }));
        // DBOPS_BACKUP_MIRROR=local: a backup needs both copies, so both places are proven.
        if (storage.mirror) await probeFolder(storage.mirror.dir);
        return {
          detail: `s3://${storage.bucket}/${storage.prefix} is writable${storage.endpoint ? ` (${storage.endpoint})` : ''}${storage.mirror ? `, and so is the local copy's folder ${storage.mirror.dir}` : ''}; connection: ${s3Security(storage)}`,
        };
      } finally {
        s3.destroy();
      }
    },
    hint: ({ config }) =>
      config.storage.kind === 'local'
        ? `make ${config.storage.dir} writable or set DBOPS_BACKUP_DIR`
        : `check DBOPS_S3_BUCKET (${config.storage.bucket}), DBOPS_S3_ENDPOINT and the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY credentials${config.storage.mirror ? `, and that DBOPS_BACKUP_DIR (${config.storage.mirror.dir}, the local copy of DBOPS_BACKUP_MIRROR=local) is writable` : ''}`,
  },
  {
    name: 'slack',
    required: false,
    async run({ config }) {
      if (!config.slackWebhookUrl) {
        return { status: 'warn', detail: 'not configured: backups and restores will not notify' };
      }
      return { detail: `webhook configured (${new URL(config.slackWebhookUrl).host})` };
    },
    hint: () => 'set DBOPS_SLACK_WEBHOOK_URL to a Slack incoming webhook to get notifications',
  },
  restoreApprovalsCheck,
  manifestKeyCheck,
];

export async function runDoctor(config: Config): Promise<CheckResult[]> {
  const ctx: CheckContext = { config };
  const results: CheckResult[] = [];
  for (const check of checks) {
    try {
      const r = await withTimeout(check.run(ctx), check.name);
      const status = r.status ?? 'ok';
      results.push({
        name: check.name,
        status,
        required: check.required,
        detail: r.detail,
        hint: status === 'ok' ? undefined : (r.hint ?? check.hint(ctx)),
      });
    } catch (err) {
      results.push({
        name: check.name,
        status: 'fail',
        required: check.required,
        detail: rootMessage(err),
        hint: check.hint(ctx),
      });
    }
  }
  return results;
}

/**
 * Passed unless a required check failed. A warning (e.g. unsigned approvals on the dev stack) is
 * advice, and a skip is a check that need not or cannot run (an optional setting left unset, or the
 * client tools after PostgreSQL's own row failed), so neither changes the exit status.
 */
export function doctorPassed(results: readonly CheckResult[]): boolean {
  return results.every((r) => !r.required || r.status !== 'fail');
}

/** Creates `dir` if missing and proves a file can be written and removed there. */
async function probeFolder(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const probe = path.join(dir, `.dbops-doctor-${randomUUID()}`);
  await writeFile(probe, 'probe');
  await rm(probe);
}
