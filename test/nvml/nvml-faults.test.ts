import type { JobTracker } from '../../exporter/src/sampler';
import type { GpuProcess } from '../../exporter/src/core';
import type { Source } from '../../exporter/src/sources/types';
import {
  duration,
  energyAt,
  fixture,
  metricSum,
  metricValues,
  nvmlConfig,
  readsAround,
  readTrace,
  setFakeEnv,
  fakeNvmlSuite,
  startReplay,
  type Replay,
} from './fake-nvml';

/**
 * Each fault switch of the fake libnvidia-ml gives the documented behaviour: reset → interval
 * dropped and counted; lost → that GPU down, the other goes on; hang → NVML times out, other
 * sources keep sampling; MIG → whole-GPU energy, no crash. Energy is never negative or NaN.
 */

const SPEED = 20;
const nv = fakeNvmlSuite();

async function expectSaneEnergy(r: Replay): Promise<void> {
  for (const v of await metricValues(r.exp.metrics.nodeEnergy)) expect(Number.isFinite(v.value) && v.value >= 0).toBe(true);
  for (const v of await metricValues(r.exp.metrics.nodePower)) expect(Number.isFinite(v.value) && v.value >= 0).toBe(true);
}

/** Records what the sampler hands to the jobs tracker each tick. */
function recordingJobs(seen: GpuProcess[][]): JobTracker {
  return {
    async usage(_now, _dt, gpuProcesses) {
      seen.push([...gpuProcesses]);
      return [];
    },
    record() {},
  };
}

const [single] = readTrace('trace.json');
const two = readTrace('two-gpu-trace.json');

test('RESET_AT: the interval with the counter restart is dropped and counted, the rest is kept', async () => {
  const resetAt = 15; // during the full-load phase
  setFakeEnv({
    JOULEFLOW_FAKE_NVML_TRACE: fixture('trace.json'),
    JOULEFLOW_FAKE_NVML_SPEED: String(SPEED),
    JOULEFLOW_FAKE_NVML_EPOCH: 'first-read',
    JOULEFLOW_FAKE_NVML_RESET_AT: String(resetAt),
  });
  nv.replay = await startReplay(nvmlConfig(nv.library), SPEED);
  const T = duration(single);
  await nv.replay.run(1, T + 1.5);
  const { metrics } = nv.replay.exp;

  expect(await metricSum(metrics.sourceErrors, { reader: 'nvml', reason: 'counter_reset' })).toBe(1);
  const exported = await metricSum(metrics.nodeEnergy, { source: 'nvml', device: 'gpu0' });
  const delta = (energyAt(single, T) - energyAt(single, 0)) / 1000;
  // What is lost is the one interval around the reset: between the last read before it and the
  // first after it, bounded by the ticks' windows (about 1 s of trace; more when a loaded machine
  // ran the ticks late, 1 s of trace being 50 ms here).
  const around = readsAround(nv.replay.ticks, resetAt);
  const lostAtMost = (energyAt(single, around.after) - energyAt(single, around.before)) / 1000;
  expect(exported).toBeLessThan(delta);
  // (These bounds can be exact: 1e-6 of them for the exporter's and this test's different float sums.)
  expect(exported).toBeGreaterThanOrEqual((delta - lostAtMost) * (1 - 1e-6));
  await expectSaneEnergy(nv.replay);
});

test('POWER_LIMIT_MW: a GPU drawing above the enforced limit read at start (cap raised later) keeps its energy', async () => {
  // As if an admin ran `nvidia-smi -pl 150` before the exporter started and raised the cap later:
  // the full-load phase then draws ~4x the enforced limit read at init. Bounding the impossible
  // delta by that limit dropped those intervals as counter resets.
  setFakeEnv({
    JOULEFLOW_FAKE_NVML_TRACE: fixture('trace.json'),
    JOULEFLOW_FAKE_NVML_SPEED: String(SPEED),
    JOULEFLOW_FAKE_NVML_EPOCH: 'first-read',
    JOULEFLOW_FAKE_NVML_POWER_LIMIT_MW: '150000',
  });
  nv.replay = await startReplay(nvmlConfig(nv.library), SPEED);
  const T = duration(single);
  await nv.replay.run(1, T + 1.5);
  const { metrics } = nv.replay.exp;
  expect(await metricSum(metrics.sourceErrors, { reader: 'nvml', reason: 'counter_reset' })).toBe(0);
  const exported = await metricSum(metrics.nodeEnergy, { source: 'nvml', device: 'gpu0' });
  expect(Math.abs(exported - (energyAt(single, T) - energyAt(single, 0)) / 1000)).toBeLessThanOrEqual(1);
  await expectSaneEnergy(nv.replay);
});

test('LOST_AT on one of two GPUs: that GPU goes down, the other keeps counting', async () => {
  const lostAt = 10;
  setFakeEnv({
    JOULEFLOW_FAKE_NVML_TRACE: fixture('two-gpu-trace.json'),
    JOULEFLOW_FAKE_NVML_SPEED: String(SPEED),
    JOULEFLOW_FAKE_NVML_EPOCH: 'first-read',
    JOULEFLOW_FAKE_NVML_LOST_AT: String(lostAt),
    JOULEFLOW_FAKE_NVML_FAULT_GPU: '1',
  });
  nv.replay = await startReplay(nvmlConfig(nv.library), SPEED);
  const T = duration(two[0]);
  await nv.replay.run(1, T + 1.5);
  const { metrics, sampler } = nv.replay.exp;

  expect(await metricSum(metrics.sourceUp, { reader: 'nvml', device: '' })).toBe(1);
  expect(await metricSum(metrics.sourceUp, { reader: 'nvml', device: 'gpu0' })).toBe(1);
  expect(await metricSum(metrics.sourceUp, { reader: 'nvml', device: 'gpu1' })).toBe(0);
  expect(await metricSum(metrics.sourceErrors, { reader: 'nvml', reason: 'gpu_lost' })).toBeGreaterThan(0);
  expect(sampler.statuses.find((s) => s.name === 'nvml')?.devicesDown).toEqual(['gpu1']);

  const gpu0 = await metricSum(metrics.nodeEnergy, { source: 'nvml', device: 'gpu0' });
  expect(Math.abs(gpu0 - (energyAt(two[0], T) - energyAt(two[0], 0)) / 1000)).toBeLessThanOrEqual(1);
  // gpu1 counted until its last read before the loss (~1 s before it when ticks are on time; its
  // place from the ticks' windows, however late a loaded machine ran them).
  const gpu1 = await metricSum(metrics.nodeEnergy, { source: 'nvml', device: 'gpu1' });
  const lastRead = readsAround(nv.replay.ticks, lostAt).before;
  expect(gpu1).toBeLessThanOrEqual((energyAt(two[1], lostAt) - energyAt(two[1], 0)) / 1000 + 1e-9);
  expect(gpu1).toBeGreaterThanOrEqual(((energyAt(two[1], lastRead) - energyAt(two[1], 0)) / 1000) * (1 - 1e-6));
  await expectSaneEnergy(nv.replay);
});

test('LOST_AT on the only GPU: the source is down, nothing breaks', async () => {
  setFakeEnv({
    JOULEFLOW_FAKE_NVML_TRACE: fixture('trace.json'),
    JOULEFLOW_FAKE_NVML_SPEED: String(SPEED),
    JOULEFLOW_FAKE_NVML_EPOCH: 'first-read',
    JOULEFLOW_FAKE_NVML_LOST_AT: '5',
  });
  nv.replay = await startReplay(nvmlConfig(nv.library), SPEED);
  await nv.replay.run(1, 8);
  const { metrics } = nv.replay.exp;
  expect(await metricSum(metrics.sourceUp, { reader: 'nvml', device: '' })).toBe(0);
  expect(await metricSum(metrics.sourceUp, { reader: 'nvml', device: 'gpu0' })).toBe(0);
  expect(await metricSum(metrics.sourceErrors, { reader: 'nvml', reason: 'gpu_lost' })).toBeGreaterThan(0);
  await expectSaneEnergy(nv.replay);
});

test('HANG_MS: NVML times out and is reported down while the other sources keep sampling', async () => {
  const ticks: boolean[] = [];
  const steady: Source = {
    name: 'steady',
    init: async () => true,
    sample: async () => ({
      readings: [{ kind: 'mean_power', component: 'compute', domain: 'cpu', device: 'cpu', source: 'steady', watts: 100 }],
    }),
  };
  setFakeEnv({ JOULEFLOW_FAKE_NVML_TRACE: fixture('trace.json'), JOULEFLOW_FAKE_NVML_HANG_MS: '300' });
  // Real-time clock here; each NVML call sleeps 300 ms against a 50 ms per-source timeout.
  nv.replay = await startReplay(
    nvmlConfig(nv.library, { sample: { interval: '100ms', timeout: '50ms' } }),
    1,
    { extraSources: [steady] },
    { awaitGpus: false },
  );
  // Per tick: did the steady source deliver?
  nv.replay.exp.sampler.onTick.push((step) => ticks.push(step.series.some((s) => s.source === 'steady')));
  await nv.replay.run(0.1, 1.0);
  const { metrics } = nv.replay.exp;

  expect(ticks).toEqual(new Array(11).fill(true));
  expect(await metricSum(metrics.sourceUp, { reader: 'nvml', device: '' })).toBe(0);
  // Down while nvmlInit/discovery is still running (init_timeout), then on each slow read (timeout).
  const down =
    (await metricSum(metrics.sourceErrors, { reader: 'nvml', reason: 'timeout' })) +
    (await metricSum(metrics.sourceErrors, { reader: 'nvml', reason: 'init_timeout' }));
  expect(down).toBeGreaterThanOrEqual(2);
  expect(await metricSum(metrics.sourceUp, { reader: 'steady', device: '' })).toBe(1);
  expect(await metricSum(metrics.nodeEnergy, { source: 'steady' })).toBeGreaterThan(0);
  await expectSaneEnergy(nv.replay);
});

test('MIG mode: whole-GPU energy per GPU, processes with memory but no SM share, no crash', async () => {
  const seen: GpuProcess[][] = [];
  setFakeEnv({
    JOULEFLOW_FAKE_NVML_TRACE: fixture('two-gpu-trace.json'),
    JOULEFLOW_FAKE_NVML_SPEED: String(SPEED),
    JOULEFLOW_FAKE_NVML_EPOCH: 'first-read',
    JOULEFLOW_FAKE_NVML_MIG: '1',
  });
  nv.replay = await startReplay(nvmlConfig(nv.library), SPEED, { jobs: recordingJobs(seen) });
  const T = duration(two[0]);
  await nv.replay.run(1, T + 1.5);
  const { metrics } = nv.replay.exp;
  for (const [i, g] of two.entries()) {
    const e = await metricSum(metrics.nodeEnergy, { source: 'nvml', device: `gpu${i}` });
    expect(Math.abs(e - (energyAt(g, T) - energyAt(g, 0)) / 1000)).toBeLessThanOrEqual(1);
  }
  const procs = seen.flat();
  expect(procs.length).toBeGreaterThan(0);
  for (const p of procs) {
    expect(p.smUtilPercent).toBeUndefined();
    const rec = two[Number(p.device.slice(3))].samples[0].procs?.find((x) => x.pid === p.pid);
    expect(p.usedMemoryBytes).toBe(rec?.used_mem);
  }
  await expectSaneEnergy(nv.replay);
});

test('two GPUs shared by processes: gpuProcesses carry the trace pids, memory and SM shares', async () => {
  const seen: Array<{ offset: number; procs: GpuProcess[] }> = [];
  const jobs: JobTracker = {
    async usage(_now, _dt, gpuProcesses) {
      seen.push({ offset: nv.replay?.elapsed() ?? 0, procs: [...gpuProcesses] });
      return [];
    },
    record() {},
  };
  // Slower than the other replays: the checks need at least 3 ticks inside a 6 s stretch of the
  // trace, which at SPEED (50 ms per trace second) a loaded machine's late ticks could miss.
  const speed = 5;
  setFakeEnv({
    JOULEFLOW_FAKE_NVML_TRACE: fixture('two-gpu-trace.json'),
    JOULEFLOW_FAKE_NVML_SPEED: String(speed),
    JOULEFLOW_FAKE_NVML_EPOCH: 'first-read',
  });
  nv.replay = await startReplay(nvmlConfig(nv.library), speed, { jobs });
  await nv.replay.run(1, 20);
  const expected: Record<string, Record<number, { share: number; mem: number }>> = {};
  for (const [i, g] of two.entries()) {
    expected[`gpu${i}`] = {};
    for (const p of g.samples[0].procs ?? []) expected[`gpu${i}`][p.pid] = { share: 0, mem: p.used_mem ?? 0 };
  }
  // During the full-load phase (trace 11–17 s, util_gpu ~98–100 %) SM shares are the fixture's.
  const full = seen.filter((s) => s.offset > 11 && s.offset < 17);
  expect(full.length).toBeGreaterThan(2);
  for (const { procs } of full) {
    for (const dev of ['gpu0', 'gpu1']) {
      const mine = procs.filter((p) => p.device === dev);
      expect(mine.map((p) => p.pid).sort()).toEqual(Object.keys(expected[dev]).map(Number).sort());
      for (const p of mine) expect(p.usedMemoryBytes).toBe(expected[dev][p.pid].mem);
      const total = mine.reduce((a, p) => a + (p.smUtilPercent ?? 0), 0);
      expect(total).toBeGreaterThan(90);
    }
    const sm = (dev: string, pid: number) => procs.find((p) => p.device === dev && p.pid === pid)?.smUtilPercent ?? NaN;
    expect(sm('gpu0', 1001) / (sm('gpu0', 1001) + sm('gpu0', 1002))).toBeCloseTo(0.75, 1);
    expect(sm('gpu1', 1002) / (sm('gpu1', 1002) + sm('gpu1', 1003))).toBeCloseTo(0.6, 1);
  }
  await expectSaneEnergy(nv.replay);
});
