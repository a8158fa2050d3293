import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Histogram } from 'prom-client';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type AlertRulesResult,
  checkAlertRules,
  EXTRACTED_RULES,
  promtoolPath,
  type Rule,
  type RuleSpec,
  ruleSpec,
  ruleTestFiles,
} from '../../scripts/alert-rules';
import { registry } from '../../src/worker/metrics';
import '../../src/worker/outcomes'; // registers the dbops_operation_* series in `registry`
import '../../src/worker/wal-metrics'; // registers dbops_wal_archive_lag_*
import { OPERATIONS, OUTCOMES, REASONS } from '../../workflows/outcomes';

/**
 * The alert rules (deploy/k8s/components/monitoring/prometheusrule.yaml) with the real promtool
 * (Debian's prometheus 2.42, installed by deploy/scripts/tools.sh): `check rules` on the
 * PrometheusRule's spec and `test rules` on the unit tests in tests/, as `npm run alerts:test`
 * does; plus what promtool cannot know: the rules read series the worker exports, with label values
 * it uses, and every alert is tested firing and quiet.
 */
const spec = ruleSpec();
const rules = spec.groups.flatMap((g) => g.rules);
const alerts = rules.filter((r): r is Rule & { alert: string } => typeof r.alert === 'string');

let promtool: string;
let result: AlertRulesResult;

beforeAll(async () => {
  promtool = await promtoolPath();
  result = await checkAlertRules(promtool);
}, 600_000);

/** `spec` with the expression of the rule named `name` replaced. */
function withExpr(name: string, expr: string): RuleSpec {
  const copy = structuredClone(spec);
  const rule = copy.groups.flatMap((g) => g.rules).find((r) => (r.alert ?? r.record) === name);
  if (!rule) throw new Error(`no rule ${name}`);
  rule.expr = expr;
  return copy;
}

describe('promtool', () => {
  it('check rules accepts the PrometheusRule spec', () => {
    expect(result.check.output).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(result.check.code).toBe(0);
  });

  it('test rules passes every unit test file', () => {
    const files = ruleTestFiles();
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const f of files) {
      expect(result.test.output).toMatch(
        new RegExp(`Unit Testing:\\s+tests/${path.basename(f).replace(/\./g, '\\.')}\\s+SUCCESS`),
      );
    }
    expect(result.test.output).not.toContain('FAILED');
    expect(result.test.code).toBe(0);
  });

  it('check rules refuses an expression that does not parse, naming the alert', async () => {
    const broken = withExpr('DbopsNewestVerifiedBackupTooOld', 'min by (database (x) > 1');
    const { check } = await checkAlertRules(promtool, broken, []);
    expect(check.code).not.toBe(0);
    expect(check.output).toMatch(/"DbopsNewestVerifiedBackupTooOld": could not parse expression/);
  });

  it("the unit tests catch plain increase(), which misses a worker's first failure", async () => {
    const naive = withExpr(
      'dbops:operation_failures:increase26h',
      'sum by (operation, database, reason) (increase(dbops_operation_runs_total{outcome="failed"}[26h]))',
    );
    const backups = ruleTestFiles().filter((f) => path.basename(f) === 'backups.test.yaml');
    const { check, test } = await checkAlertRules(promtool, naive, backups);
    expect(check.code).toBe(0);
    expect(test.code).not.toBe(0);
    expect(test.output).toMatch(/alertname: DbopsBackupFailingToSucceed, time: 1d3h30m/);
    expect(test.output).toMatch(/alertname: DbopsVerificationFoundBadBackup, time: 4h/);
  });
});

interface AlertTest {
  alertname: string;
  exp_alerts?: unknown[] | null;
}
interface UnitTestFile {
  rule_files: string[];
  tests: { alert_rule_test?: AlertTest[] }[];
}

describe('the rules themselves', () => {
  const testFiles = ruleTestFiles().map((f) => ({
    name: path.basename(f),
    doc: parse(readFileSync(f, 'utf8')) as UnitTestFile,
  }));

  it('every alert is tested firing and tested quiet', () => {
    const cases = testFiles.flatMap((f) => f.doc.tests.flatMap((t) => t.alert_rule_test ?? []));
    for (const { alert } of alerts) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length > 0),
        `${alert} fires in a test`,
      ).toBe(true);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length === 0),
        `${alert} is quiet in a test`,
      ).toBe(true);
    }
    for (const f of testFiles) expect(f.doc.rule_files, f.name).toEqual([`../${EXTRACTED_RULES}`]);
  });

  it('every alert has a severity, a summary, a description and a runbook naming dbops commands', () => {
    for (const a of alerts) {
      expect(['critical', 'warning'], a.alert).toContain(a.labels?.severity);
      for (const key of ['summary', 'description', 'runbook'])
        expect(a.annotations?.[key]?.trim().length ?? 0, `${a.alert} ${key}`).toBeGreaterThan(20);
      expect(a.annotations?.runbook, a.alert).toMatch(/`dbops [a-z]/);
    }
  });

  it('the rules read only series the worker exports, with label values it uses', () => {
    const exported = new Set(
      registry
        .getMetricsAsArray()
        .flatMap(({ name }) =>
          registry.getSingleMetric(name) instanceof Histogram
            ? [name, `${name}_bucket`, `${name}_sum`, `${name}_count`]
            : [name],
        ),
    );
    const allowed: Record<string, readonly string[]> = {
      operation: OPERATIONS,
      outcome: OUTCOMES,
      reason: REASONS,
    };
    const exprs = rules.map((r) => r.expr);
    const read = new Set(exprs.flatMap((e) => e.match(/\bdbops_[a-z0-9_]+/g) ?? []));
    expect(read.size).toBeGreaterThanOrEqual(4);
    for (const metric of read) expect(exported, `${metric} is exported`).toContain(metric);
    let checked = 0;
    for (const e of exprs) {
      for (const [, label, , value] of e.matchAll(
        /\b(operation|outcome|reason)\s*(=~|!~|!=|=)\s*"([^"]*)"/g,
      )) {
        for (const v of value!.split('|')) {
          expect(allowed[label!], `${label}="${v}" in ${e}`).toContain(v);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(10);
  });
});
