import { spawnSync } from 'child_process';
import { Registry } from 'prom-client';
import { chooseModelParameters } from './choices';
import type { Inventory } from './collect';
import {
  DEVICE_INFO,
  hardwareLandingLines,
  hardwareSeries,
  MODEL_PARAMETER,
  NODE_INFO,
  registerSeries,
  type GpuDescription,
} from './series';

const GiB = 2 ** 30;
const inv: Inventory = {
  scope: 'host',
  cpu: { model: 'Intel(R) Xeon(R) Platinum 8480+', vendor: 'Intel', sockets: 2, cores: 112, threads: 224 },
  memoryBytes: 2048 * GiB,
  dimms: Array.from({ length: 32 }, () => ({ sizeBytes: 64 * GiB, type: 'DDR5' })),
  system: { vendor: 'Supermicro', model: 'SYS-821GE-TNHR', virtual: false },
  nics: [{ device: 'ens1f0np0', kind: 'nic', speedMbps: 400_000 }],
  disks: [{ device: 'nvme0n1', kind: 'ssd', model: 'SAMSUNG MZQL23T8HCLS-00A07' }],
  notes: [],
};
const gpus: GpuDescription[] = [
  { device: 'gpu0', vendor: 'nvidia', model: 'NVIDIA H200', uuid: 'GPU-d3794cbd-2e1b-a281-8629-0886034accb7', powerLimitWatts: 700 },
];
const choices = chooseModelParameters(inv, {
  cpuTdpWattsPerVcpu: 3.5,
  vcpus: 224,
  memoryBytes: 2048 * GiB,
  nicDeviceIdleWatts: {},
  nicFallbackIdleWatts: 1,
});

describe('hardware series', () => {
  const series = hardwareSeries(inv, choices, gpus, { cpu: true, dram: true });

  test('one node_info with the CPU, sockets, cores and memory as found', () => {
    const node = series.filter((s) => s.name === NODE_INFO);
    expect(node).toHaveLength(1);
    expect(node[0].labels).toMatchObject({
      cpu_model: inv.cpu?.model,
      cpu_sockets: '2',
      cpu_cores: '112',
      memory_bytes: String(2048 * GiB),
      dimms: '32',
      dimm_type: 'DDR5',
    });
  });

  test('device_info per device, named as on the energy series, value 1', () => {
    const dev = series.filter((s) => s.name === DEVICE_INFO);
    expect(dev.map((s) => s.labels.device).sort()).toEqual(['cpu', 'dram', 'ens1f0np0', 'gpu0', 'nvme0n1']);
    expect(dev.every((s) => s.value === 1)).toBe(true);
    expect(dev.find((s) => s.labels.device === 'gpu0')?.labels).toMatchObject({
      kind: 'gpu',
      vendor: 'nvidia',
      model: 'NVIDIA H200',
      power_limit_watts: '700',
    });
    expect(dev.find((s) => s.labels.device === 'ens1f0np0')?.labels.link_speed_mbps).toBe('400000');
  });

  test('models not in use (RAPL measures) publish neither their device nor their parameter', () => {
    const rapl = hardwareSeries(inv, choices, gpus, { cpu: false, dram: false });
    expect(rapl.filter((s) => ['cpu', 'dram'].includes(s.labels.device))).toEqual([]);
    expect(rapl.filter((s) => s.name === MODEL_PARAMETER).map((s) => s.labels.parameter)).toEqual(['nic_idle_watts']);
  });

  test('model parameters carry the chosen value and basis', () => {
    const cpu = series.find((s) => s.name === MODEL_PARAMETER && s.labels.parameter === 'cpu_tdp_watts');
    expect(cpu).toMatchObject({ value: 700, labels: { basis: 'inventory', device: 'cpu' } });
  });

  test('registered, the text passes promtool check metrics, with HELP on every family', async () => {
    const registry = new Registry();
    registerSeries(registry, series);
    registerSeries(registry, series); // a reload replaces, never duplicates
    const text = await registry.metrics();
    for (const name of [NODE_INFO, DEVICE_INFO, MODEL_PARAMETER]) expect(text).toMatch(new RegExp(`^# HELP ${name} \\S`, 'm'));
    expect(text.match(/^jouleflow_node_info\{/gm)).toHaveLength(1);
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    if (r.error) throw new Error(`promtool not found (apt-get install -y prometheus): ${r.error.message}`);
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.status).toBe(0);
  });

  test('landing lines say what the node is, what the inventory describes, and why each model value', () => {
    const lines = hardwareLandingLines(inv, choices, gpus, { cpu: true, dram: true });
    expect(lines).toContain('hardware: Intel(R) Xeon(R) Platinum 8480+, 2 socket(s), 112 cores / 224 threads');
    expect(lines).toContain('inventory describes: this host');
    expect(lines.find((l) => l.startsWith('model cpu_tdp_watts'))).toMatch(
      /= 700 \(inventory: Intel Xeon Platinum 8480\+: 350 W per socket × 2/,
    );
    const container = hardwareLandingLines({ ...inv, scope: 'exporter-view', notes: ['paths differ'] }, choices, gpus, {
      cpu: true,
      dram: true,
    });
    expect(container).toContain('inventory note: paths differ');
  });
});
