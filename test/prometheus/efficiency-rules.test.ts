import { spawnSync } from 'child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { basename, join } from 'path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { alertRules, durationSeconds, PROMETHEUS_CONFIG, type PromRuleFile, readYaml, REPO, requireBinary } from './lib';

/**
 * Every rules file in dashboards/alerts (`*.rules.yml`) is checked by promtool and has its unit
 * tests (`*.rules.test.yml`) run, whoever added it. The efficiency rules (energy per unit of work,
 * issue 15) get their alert mutated to prove the cases bite, and the Grafana-managed copy is run
 * through the same promtool cases.
 */

const ALERTS_DIR = join(REPO, 'dashboards/alerts');
const RULES = join(ALERTS_DIR, 'jouleflow-efficiency.rules.yml');
const RULES_TEST = join(ALERTS_DIR, 'jouleflow-efficiency.rules.test.yml');
const GRAFANA = join(REPO, 'dashboards/provisioning/alerting/jouleflow-efficiency-alerts.yml');
const ALERT = 'JouleflowEfficiencyRegression';

interface GrafanaRule {
  uid: string;
  title: string;
  condition: string;
  for?: string;
  data: Array<{ refId: string; datasourceUid: string; model: { refId?: string; expr?: string; type?: string; expression?: string } }>;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function promtool(args: string[], cwd?: string): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8', cwd, timeout: 120_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Runs the efficiency unit tests against a changed copy of the rules. */
function runMutant(mutate: (r: PromRuleFile) => void): { status: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'jouleflow-eff-rules-'));
  try {
    const copy = readYaml<PromRuleFile>(RULES);
    mutate(copy);
    writeFileSync(join(dir, basename(RULES)), toYaml(copy));
    copyFileSync(RULES_TEST, join(dir, basename(RULES_TEST)));
    return promtool(['test', 'rules', basename(RULES_TEST)], dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function theAlert(r: PromRuleFile) {
  const a = alertRules(r).find((x) => x.alert === ALERT);
  if (!a) throw new Error(`${ALERT} not found`);
  return a;
}

function constant(r: PromRuleFile, record: string): Array<{ value: number; labels?: Record<string, string> }> {
  return r.groups
    .flatMap((g) => g.rules)
    .filter((x) => x.record === record)
    .map((x) => ({ value: Number(/^\s*vector\(\s*([-+0-9.eE]+)\s*\)\s*$/.exec(x.expr)?.[1]), labels: x.labels }));
}

const ruleFiles = readdirSync(ALERTS_DIR).filter((f) => f.endsWith('.rules.yml'));

beforeAll(() => {
  requireBinary('promtool', 'prometheus');
});

describe('every rules file in dashboards/alerts', () => {
  test('there is more than one, and Prometheus in the stack loads each', () => {
    expect(ruleFiles).toEqual(expect.arrayContaining(['jouleflow.rules.yml', 'jouleflow-efficiency.rules.yml']));
    // The site glob (/etc/prometheus/rules.d/*.yml) is not one of ours.
    const loaded = readYaml<{ rule_files: string[] }>(PROMETHEUS_CONFIG)
      .rule_files.filter((f) => f.startsWith('/etc/prometheus/rules/'))
      .map((f) => basename(f));
    expect(loaded.sort()).toEqual([...ruleFiles].sort());
  });

  test.each(ruleFiles)('%s: promtool check rules, and its .test.yml passes', (file) => {
    const check = promtool(['check', 'rules', join(ALERTS_DIR, file)]);
    if (check.status !== 0) throw new Error(check.out);
    const testFile = file.replace(/\.rules\.yml$/, '.rules.test.yml');
    expect({ file, hasTests: existsSync(join(ALERTS_DIR, testFile)) }).toEqual({ file, hasTests: true });
    const r = promtool(['test', 'rules', testFile], ALERTS_DIR);
    if (r.status !== 0) throw new Error(r.out);
  });
});

describe(`${ALERT}: its unit tests bite`, () => {
  test('the test file orders the groups: thresholds, recording, alerts', () => {
    const order = readYaml<{ group_eval_order?: string[] }>(RULES_TEST).group_eval_order;
    expect(order).toEqual(readYaml<PromRuleFile>(RULES).groups.map((g) => g.name));
  });

  test.each([
    ['never fires', (e: string) => `(${e}) and vector(1) == 2`],
    ['ignores the regression factor', (e: string) => e.replace('scalar(jouleflow:threshold:efficiency_regression_factor)', '0')],
    [
      'ignores the per-unit ceiling',
      (e: string) =>
        e.replace(
          'group_left () jouleflow:threshold:energy_per_unit_joules',
          'group_left () (0 * jouleflow:threshold:energy_per_unit_joules)',
        ),
    ],
    ['sums the work reported by several nodes', (e: string) => e],
  ])('a mutant that %s fails the unit tests', (what, f) => {
    const r = runMutant((rules) => {
      const a = theAlert(rules);
      const before = a.expr;
      a.expr = f(a.expr);
      if (what.startsWith('sums')) {
        for (const g of rules.groups) for (const x of g.rules) x.expr = x.expr.replace(/max by \(job_id, unit\)/g, 'sum by (job_id, unit)');
      } else if (a.expr === before) throw new Error(`mutation "${what}" did not change the rule`);
    });
    expect(r.status).not.toBe(0);
  });

  test('a mutant without its for: fails the unit tests', () => {
    const r = runMutant((rules) => (theAlert(rules).for = '0s'));
    expect(r.status).not.toBe(0);
    expect(r.out).toContain(`alertname: ${ALERT},`);
  });
});

describe(`${ALERT}: the Grafana-managed copy`, () => {
  const file = readYaml<{ apiVersion: number; groups: Array<{ name: string; folder: string; interval: string; rules: GrafanaRule[] }> }>(
    GRAFANA,
  );
  const rule = file.groups[0].rules[0];
  const prom = readYaml<PromRuleFile>(RULES);
  const query = rule.data.find((d) => d.refId === 'A');

  test('provisioning shape: group name/folder/interval; condition is a threshold on refId A', () => {
    expect(file.apiVersion).toBe(1);
    expect(file.groups).toHaveLength(1);
    expect(file.groups[0].folder).toBe('jouleflow'); // the folder of the other rules and the dashboards
    expect(durationSeconds(file.groups[0].interval)).toBeGreaterThan(0);
    expect(rule.title).toBe(ALERT);
    const cond = rule.data.find((d) => d.refId === rule.condition);
    expect(cond?.datasourceUid).toBe('__expr__');
    expect(cond?.model).toMatchObject({ type: 'threshold', expression: 'A', refId: 'C' });
    expect(query?.datasourceUid).toBe('jouleflow-prometheus');
    const others = readdirSync(join(REPO, 'dashboards/provisioning/alerting'))
      .filter((f) => f !== basename(GRAFANA))
      .flatMap((f) => readYaml<{ groups: Array<{ rules: GrafanaRule[] }> }>(join(REPO, 'dashboards/provisioning/alerting', f)).groups)
      .flatMap((g) => g.rules.map((r) => r.uid));
    expect(others).not.toContain(rule.uid);
  });

  test('same for:, severity, factor and per-unit ceilings as the Prometheus rules', () => {
    const a = theAlert(prom);
    expect(durationSeconds(rule.for)).toBe(durationSeconds(a.for));
    expect(rule.labels?.severity).toBe(a.labels?.severity);
    const expr = query?.model.expr ?? '';
    const [factor] = constant(prom, 'jouleflow:threshold:efficiency_regression_factor');
    expect(expr).toContain(`) * ${factor.value}\n`);
    for (const c of constant(prom, 'jouleflow:threshold:energy_per_unit_joules')) {
      expect(expr).toContain(`label_replace(vector(${c.value}), "unit", "${c.labels?.unit}", "", "")`);
    }
    expect(rule.annotations?.description).toContain(`${factor.value} ×`);
  });

  test('query A, run as the Prometheus alert, passes the same promtool cases (its 7 d subquery finds the first hour)', () => {
    const r = runMutant((rules) => (theAlert(rules).expr = query?.model.expr ?? 'absent'));
    if (r.status !== 0) throw new Error(r.out);
  });
});

describe("the README's recording-rule template for a trainer's own counter", () => {
  test('joins train_tokens_total with the job energy: J per token over 5 m', () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Energy per unit of work'));
    const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    expect(block).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'jouleflow-trainer-rule-'));
    try {
      writeFileSync(join(dir, 'trainer.rules.yml'), toYaml({ groups: [{ name: 'trainer', rules: parseYaml(block as string) }] }));
      // Two nodes draw 60 kJ/min each; two ranks count their own 983 040 tokens/min each:
      // 120 000 J / 1 966 080 tokens = 0.06103515625 J/token.
      const series = (s: string, values: string) => ({ series: s, values });
      const cases = {
        rule_files: ['trainer.rules.yml'],
        evaluation_interval: '1m',
        tests: [
          {
            interval: '1m',
            input_series: [
              series('jouleflow_job_energy_joules_total{instance="a",job_id="gpt2",component="compute"}', '0+60000x10'),
              series('jouleflow_job_energy_joules_total{instance="b",job_id="gpt2",component="compute"}', '0+60000x10'),
              series('jouleflow_job_energy_joules_total{instance="a",job_id="unattributed",component="compute"}', '0+1e9x10'),
              series('train_tokens_total{job_id="gpt2",rank="0"}', '0+983040x10'),
              series('train_tokens_total{job_id="gpt2",rank="1"}', '0+983040x10'),
            ],
            promql_expr_test: [
              {
                expr: 'abs(job_id:train_energy_per_token_joules:ratio_rate5m - 0.06103515625) < bool 1e-12',
                eval_time: '8m',
                exp_samples: [{ labels: '{job_id="gpt2"}', value: 1 }],
              },
            ],
          },
        ],
      };
      writeFileSync(join(dir, 'trainer.test.yml'), toYaml(cases));
      const r = promtool(['test', 'rules', 'trainer.test.yml'], dir);
      if (r.status !== 0) throw new Error(r.out);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
