import { AmdSmiSource } from '../../exporter/src/sources/amdsmi';
import type { GpuProcess } from '../../exporter/src/sources/types';
import { createLogger } from '../../exporter/src/util/log';
import { metricSum, metricValues, startReplay, type Replay } from '../nvml/fake-nvml';
import { amdConfig, amdDuration, amdEnergyBetween, amdTrace, amdTracePath, ensureFakeAmdsmi, setAmdEnv } from './fake-amdsmi';

/**
 * The H200-derived traces replayed through the fake libamd_smi.so with the exporter in-process:
 * exported joules must match what the trace's accumulator says, computed here from the file.
 */

const SPEED = 10;
let library: string;
let replay: Replay | undefined;
let source: AmdSmiSource | undefined;
beforeAll(() => {
  library = ensureFakeAmdsmi();
});
afterEach(async () => {
  await replay?.exp.close();
  await source?.close();
  replay = undefined;
  source = undefined;
  setAmdEnv({});
});

const matmul = amdTrace('mi300x-matmul.json');
const T = amdDuration(matmul.gpus[0]);
const counterJ = amdEnergyBetween(matmul, 0, 0, T);

test('the derived trace keeps the H200 recording energy (15 134.7 J) within rounding', () => {
  expect(matmul.derived_from).toBe('test/fixtures/nvidia-h200/trace.json');
  expect(counterJ).toBeCloseTo(15134.7, 0);
});

test('energy counter: exported joules over the replay equal the accumulator delta × resolution within 1 J', async () => {
  setAmdEnv({
    JOULEFLOW_FAKE_AMDSMI_TRACE: amdTracePath('mi300x-matmul.json'),
    JOULEFLOW_FAKE_AMDSMI_SPEED: String(SPEED),
    JOULEFLOW_FAKE_AMDSMI_EPOCH: 'first-read',
  });
  replay = await startReplay(amdConfig(library), SPEED);
  const { metrics, sampler } = replay.exp;
  expect(sampler.statuses.find((s) => s.name === 'amdsmi')?.present).toBe(true);
  await replay.run(1, T + 1.5);

  const exported = await metricSum(metrics.nodeEnergy, { component: 'compute', source: 'amdsmi', device: 'gpu0' });
  expect(Math.abs(exported - counterJ)).toBeLessThanOrEqual(1);
  expect(await metricValues(metrics.nodeEnergy, { source: 'amdsmi-power' })).toHaveLength(0);
  expect(await metricSum(metrics.sourceUp, { source: 'amdsmi', device: 'gpu0' })).toBe(1);
  expect(await metricSum(metrics.sourceErrors, { source: 'amdsmi', reason: 'counter_reset' })).toBe(0);
});

test('NO_ENERGY: whole-watt socket power integrates to within 1.5 % of the counter delta', async () => {
  setAmdEnv({
    JOULEFLOW_FAKE_AMDSMI_TRACE: amdTracePath('mi300x-matmul.json'),
    JOULEFLOW_FAKE_AMDSMI_SPEED: String(SPEED),
    JOULEFLOW_FAKE_AMDSMI_EPOCH: 'first-read',
    JOULEFLOW_FAKE_AMDSMI_NO_ENERGY: '1',
  });
  replay = await startReplay(amdConfig(library), SPEED);
  const { metrics } = replay.exp;
  await replay.run(1, T);

  const exported = await metricSum(metrics.nodeEnergy, { component: 'compute', source: 'amdsmi-power', device: 'gpu0' });
  expect(await metricValues(metrics.nodeEnergy, { source: 'amdsmi' })).toHaveLength(0);
  // The first tick only finds out that the counter is unsupported, so power is measured from the
  // second tick (1 s of trace time) on: compare with what the counter says for that span.
  const reference = amdEnergyBetween(matmul, 0, 1, T);
  expect(Math.abs(exported - reference) / reference).toBeLessThan(0.015);
  const watts = await metricSum(metrics.nodePower, { source: 'amdsmi-power', device: 'gpu0' });
  expect(matmul.gpus[0].samples.map((s) => s[1])).toContain(watts);
});

test('processes: GFX engine shares follow the trace layout (gpu0: pid 1001 three times pid 1002)', async () => {
  setAmdEnv({
    JOULEFLOW_FAKE_AMDSMI_TRACE: amdTracePath('mi300x-two-gpu.json'),
    JOULEFLOW_FAKE_AMDSMI_SPEED: '5',
    JOULEFLOW_FAKE_AMDSMI_EPOCH: 'first-read',
  });
  source = new AmdSmiSource({ library }, createLogger('error'));
  expect(await source.init()).toBe(true);
  expect(source.devices.map((d) => d.device)).toEqual(['gpu0', 'gpu1']);
  // Read until an interval where both processes used the engine (the trace's busy phase), bounded.
  let busy: GpuProcess[] | undefined;
  const start = Date.now();
  for (let i = 0; i < 400 && !busy; i++) {
    // The source's clock runs in trace time, as the sampler's does in startReplay.
    const res = await source.sample({ now: (Date.now() - start) * 5, signal: new AbortController().signal });
    const gpu0 = (res.gpuProcesses ?? []).filter((p) => p.device === 'gpu0');
    if (gpu0.length === 2 && gpu0.every((p) => (p.smUtilPercent ?? 0) > 5)) busy = gpu0;
    await new Promise((r) => setTimeout(r, 150));
  }
  expect(busy).toBeDefined();
  const share = (pid: number) => busy?.find((p) => p.pid === pid)?.smUtilPercent ?? NaN;
  // make-two-gpu-trace.mjs: pid 1001 holds 0.75 of gpu0's SM time, pid 1002 0.25.
  expect(share(1001) / share(1002)).toBeGreaterThan(2.5);
  expect(share(1001) / share(1002)).toBeLessThan(3.5);
  for (const p of busy ?? []) expect(p.smUtilPercent).toBeLessThanOrEqual(100);
  expect(busy?.find((p) => p.pid === 1001)?.usedMemoryBytes).toBe(20 * 2 ** 30);
});
