import { parseConfig } from '../../exporter/src/config';
import { JobTracker } from '../../exporter/src/jobs/tracker';
import type { Attribution } from '../../exporter/src/model/attribution';
import type { StepResult } from '../../exporter/src/model/energy';
import { silentLogger } from '../../exporter/src/util/log';
import {
  duration,
  ensureFakeNvml,
  fixture,
  nvmlConfig,
  readTrace,
  setFakeEnv,
  startReplay,
  type Replay,
  type TraceSample,
} from '../nvml/fake-nvml';
import { FakeProcfs } from './fakeproc';

/**
 * The two-GPU H200 trace replayed through the fake libnvidia-ml with the processes of two jobs:
 * job A = pids 1001 (gpu0) + 1003 (gpu1), job B = pid 1002 (both GPUs). Each job's GPU energy
 * must match the split computed here from the trace: per interval, the GPU's energy × the
 * job's SM share in the sample NVML reported (memory held where every SM value is 0).
 */

const SPEED = 10;
const JOBS: Record<string, number[]> = { A: [1001, 1003], B: [1002] };
/** The process query of a tick happens shortly after the tick's timestamp: look this far ahead (trace s). */
const QUERY_SLACK_S = 0.25;

let replay: Replay | undefined;
let fake: FakeProcfs;

afterAll(async () => {
  await replay?.exp.close();
  setFakeEnv({});
  fake?.cleanup();
});

/** The job's share of a GPU in one trace sample, computed from the trace file alone. */
function shareIn(s: TraceSample, job: string): number {
  const procs = s.procs ?? [];
  const sm = procs.reduce((a, p) => a + (p.sm_util ?? 0), 0);
  const w = (p: { sm_util?: number; used_mem?: number }) => (sm > 0 ? (p.sm_util ?? 0) : (p.used_mem ?? 0));
  const total = procs.reduce((a, p) => a + w(p), 0);
  return total > 0 ? procs.filter((p) => JOBS[job].includes(p.pid)).reduce((a, p) => a + w(p), 0) / total : 0;
}

test('per-job GPU energy follows the SM-weighted split of the trace', async () => {
  const library = ensureFakeNvml();
  const gpus = readTrace('two-gpu-trace.json');
  expect(gpus).toHaveLength(2);
  fake = new FakeProcfs();
  for (const pid of [1001, 1002, 1003]) fake.set(pid, { ppid: 1, starttime: 100 });
  setFakeEnv({
    JOULEFLOW_FAKE_NVML_TRACE: fixture('two-gpu-trace.json'),
    JOULEFLOW_FAKE_NVML_SPEED: String(SPEED),
    JOULEFLOW_FAKE_NVML_EPOCH: 'first-read',
  });
  const config = nvmlConfig(library, { paths: { procfs: fake.root } });
  const base = parseConfig({});
  const registry = new JobTracker({
    procfs: fake.root,
    log: silentLogger,
    liveCap: 10,
    retentionMs: 900_000,
    checkpointMs: 5000,
    carbon: base.carbon,
    discovery: { slurm: false, kubernetes: false, env: false },
  });
  registry.register({ id: 'A', name: 'job A', pids: JOBS.A });
  registry.register({ id: 'B', name: 'job B', pids: JOBS.B });
  replay = await startReplay(config, SPEED, { jobs: registry });
  const ticks: Array<{ step: StepResult; attribution: Attribution }> = [];
  replay.exp.sampler.onTick.push((step, attribution) => ticks.push({ step, attribution }));
  await replay.run(1, duration(gpus[0]) + 1);

  const t0 = ticks[0].step.t;
  const low: Record<string, number> = { A: 0, B: 0 };
  const high: Record<string, number> = { A: 0, B: 0 };
  const got: Record<string, number> = { A: 0, B: 0 };
  let gpuTotal = 0;
  for (const { step, attribution } of ticks.slice(1)) {
    const x = (step.t - t0) / 1000; // trace seconds since the first read
    for (const [i, g] of gpus.entries()) {
      const series = step.series.find((s) => s.domain === 'gpu' && s.device === `gpu${i}`);
      const joules = series?.joules ?? 0;
      gpuTotal += joules;
      const start = g.samples[0].t;
      // Samples NVML may have answered with during this tick's process query.
      const candidates = g.samples.filter((s, k) => {
        const off = s.t - start;
        const next = g.samples[k + 1] ? g.samples[k + 1].t - start : Infinity;
        return next > x && off <= x + QUERY_SLACK_S;
      });
      for (const job of ['A', 'B']) {
        const shares = candidates.map((s) => shareIn(s, job));
        low[job] += joules * Math.min(...shares);
        high[job] += joules * Math.max(...shares);
      }
    }
    for (const j of attribution.jobs) got[j.id] += j.joules.compute;
  }
  expect(gpuTotal).toBeGreaterThan(10_000); // two GPUs of the 15 kJ trace, minus the edges
  for (const job of ['A', 'B']) {
    expect(got[job]).toBeGreaterThanOrEqual(low[job] * (1 - 1e-9));
    expect(got[job]).toBeLessThanOrEqual(high[job] * (1 + 1e-9));
    // And the bound itself is tight: the candidates differ only around sample changes.
    expect(high[job] - low[job]).toBeLessThan(0.06 * got[job]);
  }
  // Busy: A holds 75 % of gpu0 and 40 % of gpu1, B the rest; the split lands in between.
  expect(got.A / (got.A + got.B)).toBeGreaterThan(0.5);
  expect(got.A + got.B).toBeCloseTo(gpuTotal, 6); // every GPU joule went to a job (no idle GPU)
});
