import { trapezoid } from '../../exporter/src/model/energy';
import type { JobTracker } from '../../exporter/src/sampler';
import type { GpuProcess } from '../../exporter/src/core';
import {
  duration,
  energyAt,
  fixture,
  metricSum,
  metricValues,
  nvmlConfig,
  readTrace,
  setFakeEnv,
  fakeNvmlSuite,
  startReplay,
} from './fake-nvml';

/**
 * The recorded H200 trace replayed through the fake libnvidia-ml, with the exporter in-process:
 * the exported GPU energy must match what the trace itself says.
 */

const SPEED = 10;
const nv = fakeNvmlSuite();

describe('NVML source replaying the shared H200 trace', () => {
  const [gpu] = readTrace('trace.json');
  const T = duration(gpu);
  // Independent of the code under test: straight from the trace file.
  const counterDeltaJ = (gpu.samples[gpu.samples.length - 1].energy_mj - gpu.samples[0].energy_mj) / 1000;

  test('the trace is what its README says (sanity check of the expected value)', () => {
    expect(counterDeltaJ).toBeCloseTo(15134.7, 0);
    expect(T).toBeGreaterThan(35);
  });

  test('energy counter: exported joules over the whole replay equal the trace counter delta within 1 J', async () => {
    setFakeEnv({
      JOULEFLOW_FAKE_NVML_TRACE: fixture('trace.json'),
      JOULEFLOW_FAKE_NVML_SPEED: String(SPEED),
      JOULEFLOW_FAKE_NVML_EPOCH: 'first-read',
    });
    nv.replay = await startReplay(nvmlConfig(nv.library), SPEED);
    const { metrics, sampler } = nv.replay.exp;
    expect(sampler.statuses.find((s) => s.name === 'nvml')?.present).toBe(true);
    // Ticks every 1 s of trace time until well after the end (the last sample then holds).
    await nv.replay.run(1, T + 1.5);

    const exported = await metricSum(metrics.nodeEnergy, { component: 'compute', source: 'nvml', device: 'gpu0' });
    expect(Math.abs(exported - counterDeltaJ)).toBeLessThanOrEqual(1);
    // Nothing through the power fallback, nothing negative or NaN anywhere.
    expect(await metricValues(metrics.nodeEnergy, { source: 'nvml-power' })).toHaveLength(0);
    for (const v of await metricValues(metrics.nodeEnergy)) expect(Number.isFinite(v.value) && v.value >= 0).toBe(true);
    expect(await metricSum(metrics.sourceUp, { reader: 'nvml', device: 'gpu0' })).toBe(1);
    expect(await metricSum(metrics.sourceErrors, { reader: 'nvml', reason: 'counter_reset' })).toBe(0);
  });

  test('NO_ENERGY: power sampled every 1 s of trace time integrates to within 1 % of the counter delta', async () => {
    setFakeEnv({
      JOULEFLOW_FAKE_NVML_TRACE: fixture('trace.json'),
      JOULEFLOW_FAKE_NVML_SPEED: String(SPEED),
      JOULEFLOW_FAKE_NVML_EPOCH: 'first-read',
      JOULEFLOW_FAKE_NVML_NO_ENERGY: '1',
    });
    nv.replay = await startReplay(nvmlConfig(nv.library), SPEED);
    const { metrics } = nv.replay.exp;
    await nv.replay.run(1, T);

    const exported = await metricSum(metrics.nodeEnergy, { component: 'compute', source: 'nvml-power', device: 'gpu0' });
    expect(await metricValues(metrics.nodeEnergy, { source: 'nvml' })).toHaveLength(0);
    expect(Math.abs(exported - counterDeltaJ) / counterDeltaJ).toBeLessThan(0.01);
    // The exported power gauge is the latest sample, a value the trace holds.
    const watts = await metricSum(metrics.nodePower, { source: 'nvml-power', device: 'gpu0' });
    expect(gpu.samples.map((s) => s.power_mw / 1000)).toContain(watts);
  });

  test('reference: trapezoid of the trace power at 1 s steps is itself within 1 % of the counter (the bound above is physical)', () => {
    const t0 = gpu.samples[0].t;
    const powerAt = (x: number) => {
      let p = gpu.samples[0].power_mw;
      for (const s of gpu.samples) {
        if (s.t - t0 > x) break;
        p = s.power_mw;
      }
      return p / 1000;
    };
    let j = 0;
    for (let x = 0; x < T; x += 1) j += trapezoid(powerAt(x), powerAt(Math.min(x + 1, T)), Math.min(1, T - x));
    expect(Math.abs(j - counterDeltaJ) / counterDeltaJ).toBeLessThan(0.01);
    expect(energyAt(gpu, T)).toBe(gpu.samples[gpu.samples.length - 1].energy_mj);
  });
});

describe('NVML source replaying the GPT-2 training trace', () => {
  const [gpu] = readTrace('training-trace.json');
  const T = duration(gpu);
  const counterDeltaJ = (gpu.samples[gpu.samples.length - 1].energy_mj - gpu.samples[0].energy_mj) / 1000;

  test('exported joules equal the counter delta within 1 J; the training process is seen with its memory', async () => {
    const speed = 25;
    const seen: GpuProcess[] = [];
    const jobs: JobTracker = {
      async usage(_now, _dt, gpuProcesses) {
        seen.push(...gpuProcesses);
        return [];
      },
      record() {},
    };
    setFakeEnv({
      JOULEFLOW_FAKE_NVML_TRACE: fixture('training-trace.json'),
      JOULEFLOW_FAKE_NVML_SPEED: String(speed),
      JOULEFLOW_FAKE_NVML_EPOCH: 'first-read',
    });
    nv.replay = await startReplay(nvmlConfig(nv.library), speed, { jobs });
    await nv.replay.run(1, T + 1.5);
    const exported = await metricSum(nv.replay.exp.metrics.nodeEnergy, { component: 'compute', source: 'nvml', device: 'gpu0' });
    expect(counterDeltaJ).toBeGreaterThan(25000);
    expect(Math.abs(exported - counterDeltaJ)).toBeLessThanOrEqual(1);

    const traceMem = new Set(gpu.samples.flatMap((s) => (s.procs ?? []).map((p) => p.used_mem)));
    const training = seen.filter((p) => p.pid === 415);
    expect(training.length).toBeGreaterThan(10);
    for (const p of training) {
      expect(p.device).toBe('gpu0');
      expect(traceMem.has(p.usedMemoryBytes)).toBe(true);
      expect(p.smUtilPercent).toBeUndefined(); // the capture has no per-process SM utilisation
    }
    expect(Math.max(...training.map((p) => p.usedMemoryBytes ?? 0))).toBeGreaterThan(20 * 2 ** 30);
  });
});
