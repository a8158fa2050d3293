/**
 * `npm run histories:record`: runs the test files that produce every required branch
 * (branches.ts) with recording on, into test/fixtures/histories/<package version>/, then checks
 * that every required branch was recorded. Needs the dev stack (test/run.sh starts it).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { packageVersion } from '../../src/build-info';
import { REPO_ROOT } from '../../src/config';
import { fixtureName, REQUIRED_BRANCHES } from './branches';

const outDir = path.join(REPO_ROOT, 'test', 'fixtures', 'histories', packageVersion(REPO_ROOT));
const files = [...new Set(REQUIRED_BRANCHES.map((b) => b.producedBy))];
console.error(`recording into ${path.relative(REPO_ROOT, outDir)} from ${files.length} test files`);
const run = spawnSync('bash', ['test/run.sh', ...files], {
  cwd: REPO_ROOT,
  stdio: 'inherit',
  env: { ...process.env, DBOPS_RECORD_HISTORIES: outDir },
});
const missing = REQUIRED_BRANCHES.filter(
  (b) => !existsSync(path.join(outDir, fixtureName(b.workflowType, b.branch))),
);
for (const b of missing)
  console.error(`not recorded: ${b.workflowType} ${b.branch} (expected from ${b.producedBy})`);
if (run.status !== 0) console.error(`the test run failed (exit ${run.status}): fix it and record again`);
process.exitCode = run.status !== 0 || missing.length > 0 ? 1 : 0;
