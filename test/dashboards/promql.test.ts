import { spawnSync } from 'child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { stringify } from 'yaml';
import { requireBinary, ruleFiles } from '../prometheus/lib';
import { allPanels, type Dashboard, loadDashboards, pluginId, substitute, TEMPLATE_VALUES } from './lib';

/**
 * The dashboards' own PromQL evaluated by `promtool test rules` over hand-written series: what a
 * Grafana user sees in the edge cases that a live scrape of a healthy exporter never produces.
 */

const dashboards = loadDashboards();
const byUid = (uid: string) => (dashboards.find((l) => l.dashboard.uid === uid) as { dashboard: Dashboard }).dashboard;

interface ExpSample {
  labels: string;
  value: number;
}
interface Case {
  expr: string;
  eval_time: string;
  exp_samples: ExpSample[];
}

/**
 * Runs promql_expr_test cases over the input series, with every rule file of dashboards/alerts
 * loaded (the dashboards read the fleet recording rules); returns promtool's exit status and output.
 */
function promtool(
  inputSeries: Array<{ series: string; values: string }>,
  cases: Case[],
  interval = '1m',
): { status: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'jouleflow-promql-'));
  try {
    const file = join(dir, 'test.yml');
    const rules = ruleFiles().map((f, i) => {
      copyFileSync(f, join(dir, `rules-${i}.yml`));
      return `rules-${i}.yml`;
    });
    writeFileSync(
      file,
      stringify({
        rule_files: rules,
        evaluation_interval: '1m',
        tests: [{ interval, input_series: inputSeries, promql_expr_test: cases }],
      }),
    );
    const r = spawnSync('promtool', ['test', 'rules', file], { encoding: 'utf8', timeout: 60_000 });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

beforeAll(() => {
  requireBinary('promtool', 'prometheus');
});

describe('job_name join when a job is renamed within the dashboard range', () => {
  // Job j1 is registered as "old-name", renamed to "new-name" at 11m (the exporter removes the old
  // jouleflow_job_info series and sets the new one), on two nodes; evaluated at 30m over 30m.
  const info = (instance: string, name: string) =>
    `jouleflow_job_info{job="jouleflow",instance="${instance}",job_id="j1",job_name="${name}",user="u",scheduler="api"}`;
  const input = [
    { series: info('node-a:10042', 'old-name'), values: '1x10 _x20' },
    { series: info('node-a:10042', 'new-name'), values: '_x10 1x20' },
    { series: info('node-b:10042', 'old-name'), values: '1x10 _x20' },
    { series: info('node-b:10042', 'new-name'), values: '_x10 1x20' },
    {
      series:
        'jouleflow_job_energy_joules_total{job="jouleflow",instance="node-a:10042",job_id="j1",component="compute",method="measured"}',
      values: '0+60x30',
    },
    {
      series: 'jouleflow_job_start_time_seconds{job="jouleflow",instance="node-a:10042",job_id="j1"}',
      values: '0x30',
    },
  ];
  const vars = { ...TEMPLATE_VALUES, __range: '30m', __interval: '15s' };

  test('Training jobs "Jobs" table: one row per job, with the newest name', () => {
    const table = allPanels(byUid('jouleflow-jobs')).find((p) => p.type === 'table' && p.title === 'Jobs');
    const a = table?.targets?.find((t) => t.refId === 'A');
    expect(a?.expr).toBeDefined();
    const r = promtool(input, [
      {
        expr: substitute(a!.expr!, vars),
        eval_time: '30m',
        exp_samples: [{ labels: '{job_id="j1",job_name="new-name"}', value: 1 }],
      },
    ]);
    expect({ status: r.status, out: r.out }).toEqual({ status: 0, out: expect.stringContaining('SUCCESS') });
  });

  test.each(['jouleflow-jobs', 'jouleflow-fleet'])(
    '%s energy split panel: one sample per job and component, named by the newest name',
    (uid) => {
      const panel = allPanels(byUid(uid)).find((p) => p.type === pluginId());
      const a = panel?.targets?.find((t) => t.refId === 'A');
      expect(a?.expr).toBeDefined();
      const r = promtool(input, [
        {
          expr: substitute(a!.expr!, vars),
          eval_time: '30m',
          // increase over 30m of 60 J/min
          exp_samples: [{ labels: '{job_id="j1",component="compute",job_name="new-name"}', value: 1800 }],
        },
      ]);
      expect({ status: r.status, out: r.out }).toEqual({ status: 0, out: expect.stringContaining('SUCCESS') });
    },
  );
});

describe('Training jobs "Energy per unit of work over the time range": fleet totals whatever $node is', () => {
  // Job j1 runs on two nodes at 60 J/min each; only node-a (rank 0) reports work, 10 tokens/min.
  // Samples every 15 s; evaluated at 30m over 30m: 2 × 60 J/min × 30 min / (10 tokens/min × 30 min).
  const input = ['node-a:10042', 'node-b:10042'].flatMap((instance) => [
    {
      series: `jouleflow_job_energy_joules_total{job="jouleflow",instance="${instance}",job_id="j1",component="compute",method="measured"}`,
      values: '0+15x120',
    },
  ]);
  input.push({
    series: 'jouleflow_job_work_total{job="jouleflow",instance="node-a:10042",job_id="j1",unit="tokens"}',
    values: '0+2.5x120',
  });

  test.each(['.*', 'node-a:10042', 'node-b:10042'])('$node = %s: 12 J per token', (node) => {
    const panel = allPanels(byUid('jouleflow-jobs')).find((p) => p.title === 'Energy per unit of work over the time range');
    const compute = panel?.targets?.find((t) => t.expr?.includes('component="compute"'));
    expect(compute?.expr).toBeDefined();
    const vars = { ...TEMPLATE_VALUES, __range: '30m', __interval: '15s', node };
    const r = promtool(
      input,
      [
        {
          expr: substitute(compute!.expr!, vars),
          eval_time: '30m',
          exp_samples: [{ labels: '{job_id="j1",unit="tokens",component="compute"}', value: 12 }],
        },
      ],
      '15s',
    );
    expect({ status: r.status, out: r.out }).toEqual({ status: 0, out: expect.stringContaining('SUCCESS') });
  });
});
