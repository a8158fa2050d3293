import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The version in dbops's package.json: the nearest package.json named `dbops` above `from`. That is
 * ../../package.json from src/cli (tsx) and ../../../package.json from dist/src/cli (bin/dbops.js,
 * also in the image, where /app holds dist/ and package.json).
 */
export function packageVersion(from: string = __dirname): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    let text: string | undefined;
    try {
      text = readFileSync(path.join(dir, 'package.json'), 'utf8');
    } catch {
      text = undefined;
    }
    if (text !== undefined) {
      const pkg = JSON.parse(text) as { name?: unknown; version?: unknown };
      if (pkg.name === 'dbops' && typeof pkg.version === 'string') return pkg.version;
    }
    if (path.dirname(dir) === dir) return 'unknown';
  }
}
