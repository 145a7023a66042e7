import type { Source } from '../../exporter/src/sources/types';
import {
  collectingLogger,
  ensureFakeNvml,
  fixture,
  metricSum,
  metricValues,
  readsAround,
  setFakeEnv,
  startReplay,
  type Replay,
} from '../nvml/fake-nvml';
import { createExporter } from '../../exporter/src/exporter';
import { amdConfig, amdDuration, amdEnergyBetween, amdTrace, amdTracePath, ensureFakeAmdsmi, setAmdEnv } from './fake-amdsmi';

/**
 * The fake libamd_smi.so's fault switches give the documented behaviour: an absent library or
 * driver is one info line and source_up 0, never an error; reset → that interval dropped and
 * counted; lost → that GPU down, the other goes on; hang → AMD SMI times out while the other
 * sources keep sampling; a node with NVIDIA and AMD GPUs exports both. Energy is never negative.
 */

const SPEED = 20;
let library: string;
let replay: Replay | undefined;
beforeAll(() => {
  library = ensureFakeAmdsmi();
});
afterEach(async () => {
  await replay?.exp.close();
  replay = undefined;
  setAmdEnv({});
  setFakeEnv({});
});

async function expectSaneEnergy(r: Replay): Promise<void> {
  for (const v of await metricValues(r.exp.metrics.nodeEnergy)) expect(Number.isFinite(v.value) && v.value >= 0).toBe(true);
}

const matmul = amdTrace('mi300x-matmul.json');
const two = amdTrace('mi300x-two-gpu.json');

test.each([
  ['a library that does not exist', '/nonexistent/libamd_smi.so', 'AMD SMI library not available'],
  ['a library whose driver is not loaded (no trace)', 'fake', 'AMD SMI did not initialise'],
])('%s: one info line, source_up 0, no error or warning', async (_what, lib, message) => {
  const lines: string[] = [];
  const exp = await createExporter(amdConfig(lib === 'fake' ? library : lib), { log: collectingLogger(lines) });
  try {
    await exp.sampler.tick();
    expect(exp.sampler.statuses.find((s) => s.name === 'amdsmi')?.present).toBe(false);
    expect(await metricSum(exp.metrics.sourceUp, { reader: 'amdsmi', device: '' })).toBe(0);
    const mine = lines.filter((l) => l.includes('source=amdsmi'));
    expect(mine.filter((l) => l.includes(message))).toHaveLength(1);
    expect(mine.filter((l) => /level=(warn|error)/.test(l))).toHaveLength(0);
  } finally {
    await exp.close();
  }
});

test('RESET_AT: the interval with the reset is dropped and counted, the rest is counted exactly', async () => {
  const resetAt = 15;
  setAmdEnv({
    JOULEFLOW_FAKE_AMDSMI_TRACE: amdTracePath('mi300x-matmul.json'),
    JOULEFLOW_FAKE_AMDSMI_SPEED: String(SPEED),
    JOULEFLOW_FAKE_AMDSMI_EPOCH: 'first-read',
    JOULEFLOW_FAKE_AMDSMI_RESET_AT: String(resetAt),
  });
  replay = await startReplay(amdConfig(library), SPEED);
  const T = amdDuration(matmul.gpus[0]);
  await replay.run(1, T + 1.5);
  const { metrics } = replay.exp;
  expect(await metricSum(metrics.sourceErrors, { reader: 'amdsmi', reason: 'counter_reset' })).toBe(1);
  const exported = await metricSum(metrics.nodeEnergy, { source: 'amdsmi', device: 'gpu0' });
  const whole = amdEnergyBetween(matmul, 0, 0, T);
  // At most the whole delta; at least the whole minus the dropped interval around the reset: one
  // tick (1 s of trace) when ticks are on time, placed by the ticks' windows when a loaded machine
  // ran them late.
  const around = readsAround(replay.ticks, resetAt);
  expect(exported).toBeLessThanOrEqual(whole + 1);
  expect(exported).toBeGreaterThanOrEqual(whole - amdEnergyBetween(matmul, 0, around.before, around.after) - 1);
  await expectSaneEnergy(replay);
});

test('LOST_AT on one of two GPUs: that GPU goes down, the other keeps counting', async () => {
  const lostAt = 10;
  setAmdEnv({
    JOULEFLOW_FAKE_AMDSMI_TRACE: amdTracePath('mi300x-two-gpu.json'),
    JOULEFLOW_FAKE_AMDSMI_SPEED: String(SPEED),
    JOULEFLOW_FAKE_AMDSMI_EPOCH: 'first-read',
    JOULEFLOW_FAKE_AMDSMI_LOST_AT: String(lostAt),
    JOULEFLOW_FAKE_AMDSMI_FAULT_GPU: '1',
  });
  replay = await startReplay(amdConfig(library), SPEED);
  const T = amdDuration(two.gpus[0]);
  await replay.run(1, T + 1.5);
  const { metrics, sampler } = replay.exp;
  expect(await metricSum(metrics.sourceUp, { reader: 'amdsmi', device: 'gpu0' })).toBe(1);
  expect(await metricSum(metrics.sourceUp, { reader: 'amdsmi', device: 'gpu1' })).toBe(0);
  expect(await metricSum(metrics.sourceErrors, { reader: 'amdsmi', reason: 'gpu_lost' })).toBeGreaterThan(0);
  expect(sampler.statuses.find((s) => s.name === 'amdsmi')?.devicesDown).toEqual(['gpu1']);
  const gpu0 = await metricSum(metrics.nodeEnergy, { source: 'amdsmi', device: 'gpu0' });
  expect(Math.abs(gpu0 - amdEnergyBetween(two, 0, 0, T))).toBeLessThanOrEqual(1);
  const gpu1 = await metricSum(metrics.nodeEnergy, { source: 'amdsmi', device: 'gpu1' });
  expect(gpu1).toBeLessThanOrEqual(amdEnergyBetween(two, 1, 0, lostAt) + 1e-9);
  // Its last good read was the tick before the loss (1 s of trace earlier when ticks are on time;
  // placed by the ticks' windows when a loaded machine ran them late).
  // (This bound can be exact: 1e-6 of it for the exporter's and this test's different float sums.)
  const atLeast = amdEnergyBetween(two, 1, 0, readsAround(replay.ticks, lostAt).before);
  expect(gpu1).toBeGreaterThanOrEqual(atLeast * (1 - 1e-6));
  await expectSaneEnergy(replay);
});

test('HANG_MS: AMD SMI times out and is reported down while the other sources keep sampling', async () => {
  const ticks: boolean[] = [];
  const steady: Source = {
    name: 'steady',
    init: async () => true,
    sample: async () => ({
      readings: [{ kind: 'mean_power', component: 'compute', domain: 'cpu', device: 'cpu', source: 'steady', watts: 100 }],
    }),
  };
  // Every GPU query sleeps 300 ms against a 50 ms per-source timeout (discovery too: it just takes longer).
  setAmdEnv({ JOULEFLOW_FAKE_AMDSMI_TRACE: amdTracePath('mi300x-matmul.json'), JOULEFLOW_FAKE_AMDSMI_HANG_MS: '300' });
  replay = await startReplay(amdConfig(library, { sample: { interval: '100ms', timeout: '50ms' } }), 1, { extraSources: [steady] });
  replay.exp.sampler.onTick.push((step) => ticks.push(step.series.some((s) => s.source === 'steady')));
  await replay.run(0.1, 1.0);
  const { metrics } = replay.exp;
  expect(ticks).toEqual(new Array(11).fill(true));
  expect(await metricSum(metrics.sourceUp, { reader: 'amdsmi', device: '' })).toBe(0);
  expect(await metricSum(metrics.sourceErrors, { reader: 'amdsmi', reason: 'timeout' })).toBeGreaterThanOrEqual(2);
  expect(await metricSum(metrics.sourceUp, { reader: 'steady', device: '' })).toBe(1);
  await expectSaneEnergy(replay);
});

test('a node with both vendors: NVIDIA gpu0 through NVML, AMD gpu1 through AMD SMI, each with its own energy', async () => {
  const nvml = ensureFakeNvml();
  setFakeEnv({
    JOULEFLOW_FAKE_NVML_TRACE: fixture('trace.json'),
    JOULEFLOW_FAKE_NVML_SPEED: String(SPEED),
    JOULEFLOW_FAKE_NVML_EPOCH: 'first-read',
  });
  setAmdEnv({
    JOULEFLOW_FAKE_AMDSMI_TRACE: amdTracePath('mi300x-matmul.json'),
    JOULEFLOW_FAKE_AMDSMI_SPEED: String(SPEED),
    JOULEFLOW_FAKE_AMDSMI_EPOCH: 'first-read',
  });
  replay = await startReplay(amdConfig(library, { sources: { nvml: true }, nvml: { library: nvml } }), SPEED);
  const T = amdDuration(matmul.gpus[0]);
  await replay.run(1, T + 1.5);
  const { metrics } = replay.exp;
  const nv = await metricValues(metrics.nodeEnergy, { source: 'nvml' });
  const amd = await metricValues(metrics.nodeEnergy, { source: 'amdsmi' });
  expect(nv.map((v) => v.labels.device)).toEqual(['gpu0']);
  expect(amd.map((v) => v.labels.device)).toEqual(['gpu1']);
  // Both replay the same H200 recording: the NVML one in mJ, the AMD one as accumulator × 15.259 µJ.
  expect(Math.abs(amd[0].value - amdEnergyBetween(matmul, 0, 0, T))).toBeLessThanOrEqual(1);
  expect(Math.abs(nv[0].value - amd[0].value)).toBeLessThanOrEqual(2);
  await expectSaneEnergy(replay);
});
