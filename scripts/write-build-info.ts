/**
 * Writes dist/build-info.json (run by `npm run build`): the commit this build is made from, which
 * a built worker names as its build id (src/build-info.ts). The image has no .git, so the Docker
 * build passes it as DBOPS_COMMIT; a checkout asks git.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BUILD_INFO_FILE, gitCommit, packageVersion } from '../src/build-info';

const root = path.join(__dirname, '..');
const fromEnv = process.env.DBOPS_COMMIT?.trim();
if (fromEnv !== undefined && !/^[0-9a-zA-Z._-]{1,64}$/.test(fromEnv)) {
  console.error(
    `DBOPS_COMMIT=${JSON.stringify(fromEnv)}: expected a commit id such as $(git rev-parse --short=12 HEAD)`,
  );
  process.exit(2);
}
const commit = fromEnv || gitCommit(root) || 'unknown';
const file = path.join(root, 'dist', BUILD_INFO_FILE);
mkdirSync(path.dirname(file), { recursive: true });
writeFileSync(file, `${JSON.stringify({ version: packageVersion(root), commit }, null, 2)}\n`);
console.error(`build info: ${path.relative(process.cwd(), file)} (${packageVersion(root)}+${commit})`);
