/**
 * The alert rules of deploy/k8s/components/monitoring checked with the real promtool: `promtool
 * check rules` on the PrometheusRule's `spec` (a Prometheus rule file as the operator hands it to
 * Prometheus), then `promtool test rules` on the unit tests in its tests/ folder, which name the
 * extracted file `../dbops.rules.yaml`. promtool comes from deploy/scripts/tools.sh (installed into
 * the stack home on first use).
 *
 *   npm run alerts:test          (test/integration/alert-rules.test.ts runs the same functions)
 */
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';

const ROOT = path.resolve(__dirname, '..');
export const MONITORING_DIR = path.join(ROOT, 'deploy', 'k8s', 'components', 'monitoring');
export const RULE_FILE = path.join(MONITORING_DIR, 'prometheusrule.yaml');
export const RULE_TESTS_DIR = path.join(MONITORING_DIR, 'tests');
/** The rule file's name beside the tests' folder: every unit test's `rule_files` names `../` it. */
export const EXTRACTED_RULES = 'dbops.rules.yaml';

export interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface RuleGroup {
  name: string;
  rules: Rule[];
}
export interface RuleSpec {
  groups: RuleGroup[];
}

/** The `spec` of the PrometheusRule in `file`; throws naming the file when it is none. */
export function ruleSpec(file = RULE_FILE): RuleSpec {
  const doc = parse(readFileSync(file, 'utf8')) as { kind?: unknown; spec?: { groups?: unknown } } | null;
  if (doc?.kind !== 'PrometheusRule' || !Array.isArray(doc.spec?.groups)) {
    throw new Error(`${file} is not a PrometheusRule with spec.groups: fix the manifest`);
  }
  return doc.spec as RuleSpec;
}

/** The unit test files (`*.test.yaml`) in `dir`, sorted. */
export function ruleTestFiles(dir = RULE_TESTS_DIR): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.test.yaml'))
    .sort()
    .map((f) => path.join(dir, f));
}

export interface ToolRun {
  code: number;
  /** stdout and stderr, in that order. */
  output: string;
}

function runTool(file: string, args: readonly string[], cwd: string, timeoutMs: number): Promise<ToolRun> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      const why = err && typeof err.code !== 'number' ? `${err.message}\n` : '';
      resolve({ code, output: `${stdout}${stderr}${why}` });
    });
  });
}

/** promtool's path, installing it into the stack home when it is missing (deploy/scripts/tools.sh). */
export async function promtoolPath(): Promise<string> {
  const tools = path.join(ROOT, 'deploy', 'scripts', 'tools.sh');
  const r = await runTool('bash', [tools, 'promtool'], ROOT, 10 * 60_000);
  const exe = /^PROMTOOL=(.+)$/m.exec(r.output)?.[1];
  if (r.code !== 0 || !exe) throw new Error(`deploy/scripts/tools.sh promtool failed:\n${r.output}`);
  return exe;
}

export interface Workdir {
  dir: string;
  rules: string;
  tests: string[];
  remove(): void;
}

/**
 * A temp folder with `spec` as dbops.rules.yaml and copies of `testFiles` in tests/, where their
 * `../dbops.rules.yaml` finds it.
 */
export function prepareWorkdir(spec: RuleSpec, testFiles: readonly string[]): Workdir {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbops-alert-rules-'));
  const rules = path.join(dir, EXTRACTED_RULES);
  writeFileSync(rules, stringify(spec, { lineWidth: 0 }));
  mkdirSync(path.join(dir, 'tests'));
  const tests = testFiles.map((f) => {
    const copy = path.join(dir, 'tests', path.basename(f));
    copyFileSync(f, copy);
    return copy;
  });
  return { dir, rules, tests, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface AlertRulesResult {
  check: ToolRun;
  test: ToolRun;
}

/** `promtool check rules` and `promtool test rules` on `spec` and `testFiles`. */
export async function checkAlertRules(
  promtool: string,
  spec: RuleSpec = ruleSpec(),
  testFiles: readonly string[] = ruleTestFiles(),
): Promise<AlertRulesResult> {
  const work = prepareWorkdir(spec, testFiles);
  try {
    const check = await runTool(promtool, ['check', 'rules', EXTRACTED_RULES], work.dir, 60_000);
    const tests = work.tests.map((t) => path.relative(work.dir, t));
    const test = await runTool(promtool, ['test', 'rules', ...tests], work.dir, 5 * 60_000);
    return { check, test };
  } finally {
    work.remove();
  }
}

async function main(): Promise<number> {
  const promtool = await promtoolPath();
  console.log(`$ promtool check rules ${path.relative(ROOT, RULE_FILE)} (its spec)`);
  const { check, test } = await checkAlertRules(promtool);
  console.log(check.output.trimEnd());
  console.log(`\n$ promtool test rules ${path.relative(ROOT, RULE_TESTS_DIR)}/*.test.yaml`);
  console.log(test.output.trimEnd());
  return check.code === 0 && test.code === 0 ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : String(err));
      process.exitCode = 1;
    },
  );
}
