// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

/** Workflow code (workflows/, common/) runs in Temporal's deterministic sandbox: no Node built-ins, no src/. */
const sandboxImports = (activitiesRule) => [
  'error',
  {
    paths: nodeBuiltins.map((name) => ({
      name,
      message: 'Node built-ins are not allowed in workflow code.',
    })),
    patterns: [
      { group: ['**/src', '**/src/*'], message: 'workflows/ and common/ may not import src/.' },
      { ...activitiesRule, allowTypeImports: true },
    ],
  },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.stack/**', 'bench/out/**', 'bin/**', 'deploy/**/*.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver': { node: { extensions: ['.ts', '.js'] } } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      'import-x/no-cycle': 'error',
      // Activities and check functions are async by contract even when their body is synchronous.
      '@typescript-eslint/require-await': 'off',
    },
  },
  // The import boundaries, at any depth (`**/`): src/ → workflows/, activities/ → common/; workflow
  // code is deterministic; activities never import workflows or src/; nothing outside src/cli/
  // imports the CLI. test/unit/import-boundaries.test.ts proves each pattern fails on a violation.
  {
    // Workflow code runs in Temporal's deterministic sandbox: no Node built-ins, no I/O, no env.
    files: ['workflows/**/*.ts', 'common/**/*.ts'],
    rules: {
      'no-restricted-imports': sandboxImports({
        group: ['**/activities', '**/activities/*'],
        message: 'Import activities with `import type` only.',
      }),
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'No env or process access in workflow code.' },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'console', property: 'log', message: 'Use the workflow logger.' },
      ],
    },
  },
  {
    files: ['common/**/*.ts'],
    rules: {
      'no-restricted-imports': sandboxImports({
        group: ['**/activities', '**/activities/*', '**/workflows', '**/workflows/*'],
        message: 'common/ is the bottom layer: it imports only common/ (types from activities at most).',
      }),
    },
  },
  {
    files: ['activities/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/workflows', '**/workflows/*'], message: 'activities/ never import workflows/.' },
            { group: ['**/src', '**/src/*'], message: 'activities/ never import src/.' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/**/*.ts', 'bench/**/*.ts'],
    ignores: ['src/cli/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/cli', '**/cli/*'],
              message: 'Only src/cli/ imports the CLI: start workflows through src/client/.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  { files: ['**/*.mjs'], ...tseslint.configs.disableTypeChecked },
);
