import { spawnSync } from 'child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { stringify as toYaml } from 'yaml';
import {
  alertRules,
  durationSeconds,
  GRAFANA_ALERTS_FILE,
  loadRules,
  type PromRuleFile,
  readYaml,
  requireBinary,
  RULES_FILE,
  RULES_TEST_FILE,
  ruleFiles,
  ruleTestFile,
  thresholdConstants,
} from './lib';

/**
 * The Prometheus rules (dashboards/alerts/jouleflow.rules.yml) checked by promtool, their unit
 * tests run, and every alert mutated to prove its unit tests bite: a mutant that never fires, a
 * mutant that ignores its threshold and a mutant that ignores its `for:` must each fail the
 * promtool tests on that alert. The Grafana-managed copies must carry the same thresholds.
 */

interface GrafanaQuery {
  refId: string;
  datasourceUid: string;
  model: {
    refId?: string;
    expr?: string;
    type?: string;
    expression?: string;
    conditions?: Array<{ evaluator: { type: string; params: number[] } }>;
  };
}
interface GrafanaRule {
  uid: string;
  title: string;
  condition: string;
  for?: string;
  data: GrafanaQuery[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface GrafanaAlertFile {
  apiVersion: number;
  groups: Array<{ orgId?: number; name: string; folder: string; interval: string; rules: GrafanaRule[] }>;
}

function promtool(args: string[], cwd?: string): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8', cwd, timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const rules = loadRules();
const alerts = alertRules(rules);
const constants = thresholdConstants(rules);

/** Runs the unit tests against a mutated copy of the rules. */
function runMutant(mutate: (r: PromRuleFile) => void): { status: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'jouleflow-rules-'));
  try {
    const copy = loadRules();
    mutate(copy);
    writeFileSync(join(dir, 'jouleflow.rules.yml'), toYaml(copy));
    copyFileSync(RULES_TEST_FILE, join(dir, 'jouleflow.rules.test.yml'));
    return promtool(['test', 'rules', 'jouleflow.rules.test.yml'], dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function mutateAlert(name: string, f: (expr: string) => string, forValue?: string) {
  return (r: PromRuleFile) => {
    for (const g of r.groups) {
      for (const rule of g.rules) {
        if (rule.alert !== name) continue;
        const before = rule.expr;
        rule.expr = f(rule.expr);
        if (forValue === undefined && rule.expr === before) throw new Error(`mutation did not change ${name}: ${before}`);
        if (forValue !== undefined) rule.for = forValue;
      }
    }
  };
}

beforeAll(() => {
  requireBinary('promtool', 'prometheus');
});

describe('Prometheus rules', () => {
  test('the rule files in dashboards/alerts include jouleflow.rules.yml, each with its unit tests', () => {
    expect(ruleFiles()).toContain(RULES_FILE);
    for (const f of ruleFiles()) expect({ file: f, tests: existsSync(ruleTestFile(f)) }).toEqual({ file: f, tests: true });
  });

  test.each(ruleFiles())('promtool check rules accepts %s', (file) => {
    const r = promtool(['check', 'rules', file]);
    expect(r.out).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  test.each(ruleFiles().map(ruleTestFile))('promtool test rules %s: every unit test passes', (file) => {
    const r = promtool(['test', 'rules', file]);
    if (r.status !== 0) throw new Error(r.out);
    expect(r.out).toContain('SUCCESS');
  });

  test('the unit tests fix the group order: constants, then recording rules, then the alerts reading them', () => {
    // promtool evaluates groups in a random order unless told; an alert group evaluated before the
    // recording group reads the previous step and fires one step late, so the cases flaked.
    const order = readYaml<{ group_eval_order?: string[] }>(RULES_TEST_FILE).group_eval_order;
    const groups = loadRules().groups.map((g) => g.name);
    expect([...(order ?? [])].sort()).toEqual([...groups].sort());
    const at = (name: string) => (order ?? []).indexOf(name);
    for (const g of loadRules().groups) {
      const text = JSON.stringify(g.rules.map((r) => r.expr));
      for (const other of loadRules().groups) {
        if (other === g) continue;
        const reads = other.rules.some((r) => r.record && text.includes(r.record));
        if (reads)
          expect({ group: g.name, after: other.name, ok: at(other.name) < at(g.name) }).toEqual({
            group: g.name,
            after: other.name,
            ok: true,
          });
      }
    }
  });

  test('thresholds are constants, one per threshold alert, all referenced', () => {
    expect([...constants.keys()].sort()).toEqual([
      'jouleflow:threshold:counter_resets_per_hour',
      'jouleflow:threshold:job_energy_kwh',
      'jouleflow:threshold:job_power_watts',
      'jouleflow:threshold:node_power_watts',
      'jouleflow:threshold:pue_ratio',
    ]);
    const used = alerts.map((a) => /scalar\((jouleflow:threshold:[a-z_]+)\)/.exec(a.expr)?.[1]).filter(Boolean);
    expect(new Set(used)).toEqual(new Set(constants.keys()));
  });

  test('no rule uses the label "job" for training jobs', () => {
    for (const g of ruleFiles().flatMap((f) => loadRules(f).groups)) {
      for (const r of g.rules) {
        expect(r.expr).not.toMatch(/\bjob\s*(=|!=|=~|!~)/);
        expect(r.expr).not.toMatch(/by\s*\([^)]*\bjob\b[^_]/);
      }
    }
  });

  test('every alert has a severity and summary/description annotations', () => {
    expect(alerts.map((a) => a.alert).sort()).toEqual([
      'JouleflowCoolingMeterStale',
      'JouleflowCounterResetsFrequent',
      'JouleflowJobEnergyHigh',
      'JouleflowJobPowerHigh',
      'JouleflowNodePowerHigh',
      'JouleflowPueHigh',
      'JouleflowSourceDown',
    ]);
    for (const a of alerts) {
      expect(a.labels?.severity).toMatch(/^(info|warning|critical)$/);
      expect(a.annotations?.summary).toBeTruthy();
      expect(a.annotations?.description).toBeTruthy();
    }
  });

  describe.each(alerts.map((a) => a.alert as string))('%s: its unit tests bite', (name) => {
    test('a mutant that never fires fails the unit tests (a case fires above the threshold)', () => {
      const r = runMutant(mutateAlert(name, () => 'vector(1) == 2'));
      expect(r.status).not.toBe(0);
      expect(r.out).toContain(`alertname: ${name},`);
    });

    test('a mutant that ignores its threshold fails the unit tests (a case stays silent below)', () => {
      const r = runMutant(mutateAlert(name, (e) => e.replace(/scalar\(jouleflow:threshold:[a-z_]+\)/g, '-Inf').replace(/==\s*0/g, '>= 0')));
      expect(r.status).not.toBe(0);
      expect(r.out).toContain(`alertname: ${name},`);
    });
  });

  const withFor = alerts.filter((a) => durationSeconds(a.for) > 0);
  test('the alerts with a for: duration', () => {
    expect(withFor.length).toBe(5);
  });
  test.each(withFor.map((a) => [a.alert as string, a.for as string] as const))(
    '%s: a mutant without its for: %s fails the unit tests (a case checks it is silent before for elapses)',
    (name) => {
      const r = runMutant(mutateAlert(name, (e) => e, '0s'));
      expect(r.status).not.toBe(0);
      expect(r.out).toContain(`alertname: ${name},`);
    },
  );
});

describe('Grafana-managed alert rules (provisioning)', () => {
  const file = readYaml<GrafanaAlertFile>(GRAFANA_ALERTS_FILE);
  const grafanaRules = file.groups.flatMap((g) => g.rules);

  test('the file has the provisioning shape: apiVersion, group name/folder/interval', () => {
    expect(file.apiVersion).toBe(1);
    for (const g of file.groups) {
      expect(g.name).toBeTruthy();
      expect(g.folder).toBeTruthy();
      expect(durationSeconds(g.interval)).toBeGreaterThan(0);
    }
  });

  test('one Grafana rule per Prometheus alert, with the same for: duration', () => {
    expect(grafanaRules.map((r) => r.title).sort()).toEqual(alerts.map((a) => a.alert).sort());
    for (const a of alerts) {
      const g = grafanaRules.find((r) => r.title === a.alert) as GrafanaRule;
      expect({ alert: a.alert, for: durationSeconds(g.for) }).toEqual({ alert: a.alert, for: durationSeconds(a.for) });
      expect(g.labels?.severity).toBe(a.labels?.severity);
    }
  });

  test('uids are unique; condition names a refId; the threshold reads an existing refId', () => {
    const uids = grafanaRules.map((r) => r.uid);
    expect(new Set(uids).size).toBe(uids.length);
    for (const r of grafanaRules) {
      const refIds = r.data.map((d) => d.refId);
      expect(refIds).toContain(r.condition);
      for (const d of r.data) {
        expect(d.model.refId ?? d.refId).toBe(d.refId);
        if (d.datasourceUid === '__expr__') {
          expect(d.model.type).toBe('threshold');
          expect(refIds).toContain(d.model.expression);
        } else {
          expect(d.datasourceUid).toBe('jouleflow-prometheus');
          expect(d.model.expr).toBeTruthy();
        }
      }
      const cond = r.data.find((d) => d.refId === r.condition) as GrafanaQuery;
      expect(cond.datasourceUid).toBe('__expr__');
    }
  });

  test('thresholds equal the Prometheus jouleflow:threshold:* constants', () => {
    for (const a of alerts) {
      const constant = /scalar\((jouleflow:threshold:[a-z_]+)\)/.exec(a.expr)?.[1];
      const g = grafanaRules.find((r) => r.title === a.alert) as GrafanaRule;
      const cond = g.data.find((d) => d.refId === g.condition) as GrafanaQuery;
      const evaluator = cond.model.conditions?.[0]?.evaluator;
      if (constant) {
        expect({ alert: a.alert, type: evaluator?.type, value: evaluator?.params[0] }).toEqual({
          alert: a.alert,
          type: 'gt',
          value: constants.get(constant),
        });
      } else {
        // state alerts (source down, cooling stale): 1 up, 0 down
        expect({ alert: a.alert, type: evaluator?.type, value: evaluator?.params[0] }).toEqual({ alert: a.alert, type: 'lt', value: 1 });
      }
    }
  });

  test('labels escape $ (Grafana expands $VAR in labels; $$ is a literal $)', () => {
    for (const r of grafanaRules) {
      for (const [k, v] of Object.entries(r.labels ?? {})) {
        expect({ rule: r.uid, label: k, unescaped: /(^|[^$])\$(?!\$)/.test(v.replace(/\$\$/g, '')) }).toEqual({
          rule: r.uid,
          label: k,
          unescaped: false,
        });
      }
      for (const [k, v] of Object.entries(r.annotations ?? {})) {
        // annotations expand only ${VAR}: none is intended here
        expect({ rule: r.uid, annotation: k, envRef: /\$\{/.test(v) }).toEqual({ rule: r.uid, annotation: k, envRef: false });
      }
    }
  });
});
