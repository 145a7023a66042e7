import { spawnSync } from 'child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { stringify } from 'yaml';
import { allPanels, loadDashboards, substitute } from '../dashboards/lib';
import { requireBinary } from '../prometheus/lib';

/**
 * The node dashboard's "Hardware" row, its PromQL evaluated by promtool over hand-written series:
 * device info joins the energy counters on `device`, whatever the vendor of the GPU.
 */

const node = loadDashboards().find((l) => l.dashboard.uid === 'jouleflow-node')?.dashboard;
const panels = node ? allPanels(node) : [];
const expr = (title: string) =>
  substitute(panels.find((p) => p.title === title)?.targets?.[0]?.expr ?? '', { node: '.*', __rate_interval: '2m', __range: '1m' });

beforeAll(() => {
  requireBinary('promtool', 'prometheus');
});

test('the node dashboard has a Hardware row with node, device and model-parameter tables', () => {
  const titles = panels.map((p) => p.title);
  const row = titles.indexOf('Hardware');
  expect(row).toBeGreaterThan(0);
  expect(titles.slice(row + 1)).toEqual(['Node hardware', 'Devices and their power', 'Model parameters']);
  expect(expr('Node hardware')).toMatch(/jouleflow_node_info/);
  expect(expr('Model parameters')).toMatch(/jouleflow_model_parameter/);
});

test('"Devices and their power": each device\u2019s mean power carries its model from jouleflow_device_info', () => {
  const dir = mkdtempSync(join(tmpdir(), 'jouleflow-hw-'));
  try {
    // gpu0 (NVIDIA) draws 600 W = 36 000 J/min, gpu1 (AMD) 300 W, eth0 2 W; counters every minute.
    const counter = (perMin: number) => `0+${perMin}x10`;
    const i = 'instance="n1", job="jouleflow"';
    const input = [
      { series: `jouleflow_node_energy_joules_total{${i}, component="compute", device="gpu0", source="nvml"}`, values: counter(36000) },
      { series: `jouleflow_node_energy_joules_total{${i}, component="compute", device="gpu1", source="amdsmi"}`, values: counter(18000) },
      { series: `jouleflow_node_energy_joules_total{${i}, component="transmit", device="eth0", source="netdev"}`, values: counter(120) },
      {
        series: `jouleflow_device_info{${i}, device="gpu0", component="compute", kind="gpu", vendor="nvidia", model="NVIDIA H200", uuid="GPU-1", power_limit_watts="700"}`,
        values: '1x10',
      },
      {
        series: `jouleflow_device_info{${i}, device="gpu1", component="compute", kind="gpu", vendor="amd", model="AMD Instinct MI300X", uuid="a1", power_limit_watts="750"}`,
        values: '1x10',
      },
      { series: `jouleflow_device_info{${i}, device="eth0", component="transmit", kind="nic", link_speed_mbps="25000"}`, values: '1x10' },
    ];
    const labels = (device: string, extra: string) => `{instance="n1", device="${device}", ${extra}}`;
    const cases = [
      {
        expr: expr('Devices and their power'),
        eval_time: '5m',
        exp_samples: [
          {
            labels: labels(
              'gpu0',
              'component="compute", kind="gpu", vendor="nvidia", model="NVIDIA H200", uuid="GPU-1", power_limit_watts="700"',
            ),
            value: 600,
          },
          {
            labels: labels(
              'gpu1',
              'component="compute", kind="gpu", vendor="amd", model="AMD Instinct MI300X", uuid="a1", power_limit_watts="750"',
            ),
            value: 300,
          },
          { labels: labels('eth0', 'component="transmit", kind="nic", link_speed_mbps="25000"'), value: 2 },
        ],
      },
    ];
    const file = join(dir, 'test.yml');
    writeFileSync(
      file,
      stringify({ evaluation_interval: '1m', tests: [{ interval: '1m', input_series: input, promql_expr_test: cases }] }),
    );
    const r = spawnSync('promtool', ['test', 'rules', file], { encoding: 'utf8', timeout: 60_000 });
    expect(`${r.stdout}${r.stderr}`).toMatch(/SUCCESS/);
    expect(r.status).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
