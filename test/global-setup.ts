/**
 * Runs once per vitest invocation, before any test file: gives the run a Temporal namespace, a
 * backup folder and an S3 prefix of its own, and removes them (with whatever the tests left in
 * them) at the end. Tests find them through test/helpers/stack.ts (testRun, testConfig). The
 * user's `default` namespace, `.stack/backups` and the bucket's `backups/` prefix are never used;
 * test/isolation.test.ts proves it.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  deleteNamespace,
  ensureNamespace,
  listTestNamespaces,
  TEST_NAMESPACE_PREFIX,
  testNamespaceName,
  testNamespaceStarted,
} from '../src/stack/namespaces';
import { bundleWorkflows, sealedBundlePath } from '../src/worker/bundle';
import { SEALED_FAILURES_PATH } from '../src/codec/data-converter';
import { drillTable } from './drills/kit/report';
import { collectHistories, RECORD_STAGING_ENV } from './replay/record';
import { stackBucket, stackVars } from './helpers/stack';

/** A run that started longer ago than this is over (the suite takes minutes): its leftovers go. */
const STALE_MS = 3 * 3600_000;

/** Deletes every object under `prefix/` (a run's own prefix). */
async function removeS3Prefix(prefix: string): Promise<number> {
  const store = stackBucket(prefix);
  try {
    const objects = await store.list('');
    for (const o of objects) await store.delete(o.key);
    return objects.length;
  } finally {
    await store.close();
  }
}

/** Namespaces, folders and prefixes of earlier runs that were killed before their teardown. */
async function removeStaleRuns(vars: Record<string, string>): Promise<void> {
  const now = Date.now();
  const stale = (name: string) => {
    const at = testNamespaceStarted(name);
    return at !== undefined && now - at.getTime() > STALE_MS;
  };
  for (const ns of await listTestNamespaces(vars.DBOPS_TEMPORAL_ADDRESS!)) {
    if (stale(ns)) await deleteNamespace(vars.DBOPS_TEMPORAL_ADDRESS!, ns);
  }
  for (const entry of readdirSync(os.tmpdir())) {
    if (entry.startsWith(TEST_NAMESPACE_PREFIX) && stale(entry))
      rmSync(path.join(os.tmpdir(), entry), { recursive: true, force: true });
  }
  const root = stackBucket('');
  try {
    const prefixes = new Set(
      (await root.list(TEST_NAMESPACE_PREFIX)).map((o) => o.key.split('/')[0] ?? '').filter(stale),
    );
    for (const prefix of prefixes) await removeS3Prefix(prefix);
  } finally {
    await root.close();
  }
}

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  let vars: Record<string, string>;
  try {
    vars = stackVars();
  } catch {
    // No dev stack: only unit tests can run, and they need none of this.
    return undefined;
  }
  const address = vars.DBOPS_TEMPORAL_ADDRESS!;
  await removeStaleRuns(vars);

  const namespace = testNamespaceName(new Date(), randomBytes(3).toString('hex'));
  await ensureNamespace(address, namespace);
  const scratch = mkdtempSync(path.join(os.tmpdir(), `${namespace}-`));
  const backupDir = path.join(scratch, 'backups');
  mkdirSync(backupDir);
  // Test files run in forked processes that inherit this environment.
  process.env.DBOPS_TEST_NAMESPACE = namespace;
  process.env.DBOPS_TEST_BACKUP_DIR = backupDir;
  process.env.DBOPS_TEST_S3_PREFIX = namespace;
  // Tests never sign with the user's own SSH keys or agent: the signed-approval tests pass their
  // throwaway keys with --key; everything else runs unsigned against workers that do not require it.
  process.env.DBOPS_SIGNING_KEY = 'none';
  delete process.env.SSH_AUTH_SOCK;
  // Every worker of the run (in-process and child processes) loads one bundle of the current
  // workflows/, made here: webpack once per run instead of once per worker (src/worker/create.ts).
  const bundle = path.join(scratch, 'workflow-bundle.js');
  writeFileSync(bundle, await bundleWorkflows());
  // Its sibling for workers with DBOPS_PAYLOAD_KEYS (failure text encrypted, src/codec/sealed-failures.ts).
  writeFileSync(
    sealedBundlePath(bundle),
    await bundleWorkflows({ failureConverterPath: SEALED_FAILURES_PATH }),
  );
  process.env.DBOPS_WORKFLOW_BUNDLE = bundle;
  // Fault drills append their summary rows here; the table is printed when the run ends.
  process.env.DBOPS_DRILL_REPORT = path.join(scratch, 'drills.jsonl');
  // `npm run histories:record`: test files stage histories from other servers here (test/replay/record.ts).
  const recordTo = process.env.DBOPS_RECORD_HISTORIES;
  if (recordTo) {
    process.env[RECORD_STAGING_ENV] = path.join(scratch, 'histories');
    mkdirSync(process.env[RECORD_STAGING_ENV]);
  }

  return async () => {
    const table = drillTable(process.env.DBOPS_DRILL_REPORT!);
    if (table) console.log(`\n${table}\n`);
    const errors: string[] = [];
    if (recordTo) {
      // Before the namespace goes: its closed runs are the recording.
      const staging = process.env[RECORD_STAGING_ENV]!;
      await collectHistories({ address, namespace, staging, outDir: recordTo })
        .then((r) =>
          console.log(`recorded ${r.length} histories into ${recordTo}: ${r.map((x) => x.file).join(', ')}`),
        )
        .catch((e: unknown) => errors.push(`recording histories: ${String(e)}`));
    }
    await deleteNamespace(address, namespace).catch((e: unknown) =>
      errors.push(`namespace ${namespace}: ${String(e)}`),
    );
    await removeS3Prefix(namespace).catch((e: unknown) =>
      errors.push(`s3 prefix ${namespace}/: ${String(e)}`),
    );
    try {
      if (statSync(scratch).isDirectory()) rmSync(scratch, { recursive: true, force: true });
    } catch (e) {
      errors.push(`folder ${scratch}: ${String(e)}`);
    }
    if (errors.length > 0) throw new Error(`test run cleanup failed: ${errors.join('; ')}`);
  };
}
