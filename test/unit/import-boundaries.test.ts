import path from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

/**
 * The import boundaries in eslint.config.mjs hold at any depth: each case lints a one-line file
 * placed three or more folders down and expects the boundary rule to refuse it (and to accept the
 * allowed form beside it). Only no-restricted-imports runs, so no type information is needed.
 */
const repo = path.resolve(__dirname, '..', '..');
const eslint = new ESLint({
  cwd: repo,
  ruleFilter: ({ ruleId }) => ruleId === 'no-restricted-imports',
  overrideConfig: { languageOptions: { parserOptions: { projectService: false, project: null } } },
});

async function boundaryErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(repo, file) });
  return (result?.messages ?? []).map((m) => `${m.ruleId}: ${m.message}`);
}

describe('import boundaries hold at any depth', () => {
  const cases: [file: string, refused: string, allowed: string | undefined, reason: RegExp][] = [
    [
      'activities/a/b/c/deep.ts',
      "import { backupWorkflow } from '../../../../workflows/backup';\nexport const x = backupWorkflow;\n",
      "import { failure } from '../../../../common/failures';\nexport const x = failure;\n",
      /activities\/ never import workflows/,
    ],
    [
      'activities/a/b/c/deep.ts',
      "import { loadConfig } from '../../../../src/config';\nexport const x = loadConfig;\n",
      undefined,
      /activities\/ never import src/,
    ],
    [
      'workflows/a/b/c/deep.ts',
      "import { createDumpActivities } from '../../../../activities/postgres/dump';\nexport const x = createDumpActivities;\n",
      "import type { DumpActivities } from '../../../../activities/postgres/dump';\nexport type X = DumpActivities;\n",
      /`import type` only/,
    ],
    [
      'workflows/a/b/c/deep.ts',
      "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n",
      undefined,
      /Node built-ins are not allowed/,
    ],
    [
      'common/a/b/c/deep.ts',
      "import { restoreWorkflow } from '../../../../workflows/restore';\nexport const x = restoreWorkflow;\n",
      undefined,
      /common\/ is the bottom layer/,
    ],
    [
      'src/a/b/c/deep.ts',
      "import { buildProgram } from '../../../cli/main';\nexport const x = buildProgram;\n",
      "import { loadConfig } from '../../../config';\nexport const x = loadConfig;\n",
      /Only src\/cli\/ imports the CLI/,
    ],
    [
      'bench/a/b/deep.ts',
      "import { buildProgram } from '../../../src/cli/main';\nexport const x = buildProgram;\n",
      undefined,
      /Only src\/cli\/ imports the CLI/,
    ],
  ];

  it.each(cases)('%s: refused', async (file, refused, _allowed, reason) => {
    const errors = await boundaryErrors(file, refused);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(reason);
  });

  it.each(cases.filter((c) => c[2] !== undefined))(
    '%s: the allowed form passes',
    async (file, _r, allowed) => {
      expect(await boundaryErrors(file, allowed!)).toEqual([]);
    },
  );

  it('src/cli/ itself may import the CLI', async () => {
    expect(
      await boundaryErrors(
        'src/cli/commands/x/y.ts',
        "import { printJson } from '../../output';\nexport const x = printJson;\n",
      ),
    ).toEqual([]);
  });
});
