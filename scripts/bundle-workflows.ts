/**
 * Prebundles the workflow code into dist/workflow-bundle.js and its sibling for DBOPS_PAYLOAD_KEYS,
 * dist/workflow-bundle.sealed.js (run by `npm run build`), so a worker starts without webpack:
 * src/worker/create.ts loads the bundle when the file exists.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflows, sealedBundlePath, WORKFLOW_BUNDLE_PATH } from '../src/worker/bundle';
import { SEALED_FAILURES_PATH } from '../src/codec/data-converter';

const SOURCE_MAP_MARK = '//# sourceMappingURL=data:application/json;charset=utf-8;base64,';

/**
 * Drops `sourcesContent` (a copy of every bundled source file, two thirds of the inline source map)
 * from the bundle's source map. Every worker holds the bundle in memory several times over (code
 * string in the main thread and the workflow thread, parsed source map for stack traces), so this
 * saves memory in every worker; file names, lines and columns in stack traces stay exact.
 */
function withoutSourcesContent(code: string): string {
  const at = code.lastIndexOf(SOURCE_MAP_MARK);
  if (at < 0) throw new Error('workflow bundle has no inline source map (the worker requires one)');
  const map = JSON.parse(
    Buffer.from(code.slice(at + SOURCE_MAP_MARK.length).trimEnd(), 'base64').toString('utf8'),
  ) as { sourcesContent?: unknown };
  delete map.sourcesContent;
  return `${code.slice(0, at)}${SOURCE_MAP_MARK}${Buffer.from(JSON.stringify(map)).toString('base64')}\n`;
}

async function writeBundle(file: string, failureConverterPath?: string): Promise<void> {
  const started = Date.now();
  const code = await bundleWorkflows(failureConverterPath ? { failureConverterPath } : {});
  const slim = withoutSourcesContent(code);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, slim);
  console.error(
    `workflow bundle: ${path.relative(process.cwd(), file)} (${Math.round(slim.length / 1024)} KiB; ${Math.round(code.length / 1024)} KiB with embedded sources) in ${Date.now() - started} ms`,
  );
}

async function main(): Promise<void> {
  await writeBundle(WORKFLOW_BUNDLE_PATH);
  // Workers with DBOPS_PAYLOAD_KEYS load this one (src/worker/create.ts workflowSource).
  await writeBundle(sealedBundlePath(WORKFLOW_BUNDLE_PATH), SEALED_FAILURES_PATH);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
