import { parseConfig } from '../../exporter/src/config';
import { JobTracker } from '../../exporter/src/jobs/tracker';
import type { Attribution } from '../../exporter/src/model/attribution';
import type { StepResult } from '../../exporter/src/model/energy';
import { silentLogger } from '../../exporter/src/util/log';
import { ensureFakeNvml, fixture, nvmlConfig, readTrace, setFakeEnv, startReplay, type Replay } from '../nvml/fake-nvml';
import { FakeProcfs } from './fakeproc';

/**
 * Jobs given by GPU UUID, against the fake libnvidia-ml replaying the two-GPU H200 trace: the
 * UUIDs come from the trace file (what NVML reports for each GPU), the processes on each GPU from
 * the trace's samples. A job naming gpu1's UUID must own every process the trace puts on gpu1
 * (and so all of gpu1's energy), nothing that runs only on gpu0; a UUID of no GPU here owns nothing.
 */

const SPEED = 10;
/** Trace seconds replayed. */
const PLAYED_S = 8;
const NOWHERE = 'GPU-00000000-0000-0000-0000-000000000000';

let replay: Replay | undefined;
let fake: FakeProcfs | undefined;

afterAll(async () => {
  await replay?.exp.close();
  setFakeEnv({});
  fake?.cleanup();
});

test('gpus: ["GPU-…"] owns the processes NVML reports on the GPU with that UUID, and its energy', async () => {
  const library = ensureFakeNvml();
  const gpus = readTrace('two-gpu-trace.json');
  const uuid1 = gpus[1].uuid as string;
  expect(uuid1).toMatch(/^GPU-/);
  expect(gpus[0].uuid).not.toBe(uuid1);
  // The processes the trace puts on a GPU within the replayed window.
  const pidsOn = (g: number) =>
    new Set(gpus[g].samples.filter((s) => s.t - gpus[g].samples[0].t <= PLAYED_S).flatMap((s) => (s.procs ?? []).map((p) => p.pid)));
  const onGpu1 = pidsOn(1);
  const onlyGpu0 = [...pidsOn(0)].filter((pid) => !onGpu1.has(pid));
  expect(onGpu1.size).toBeGreaterThan(0);
  expect(onlyGpu0.length).toBeGreaterThan(0);

  fake = new FakeProcfs();
  for (const pid of [...pidsOn(0), ...onGpu1]) fake.set(pid, { ppid: 1, starttime: 100 });
  setFakeEnv({
    JOULEFLOW_FAKE_NVML_TRACE: fixture('two-gpu-trace.json'),
    JOULEFLOW_FAKE_NVML_SPEED: String(SPEED),
    JOULEFLOW_FAKE_NVML_EPOCH: 'first-read',
  });
  const tracker = new JobTracker({
    procfs: fake.root,
    log: silentLogger,
    liveCap: 10,
    retentionMs: 900_000,
    checkpointMs: 5000,
    carbon: parseConfig({}).carbon,
    discovery: { slurm: false, kubernetes: false, env: false },
  });
  tracker.register({ id: 'by-uuid', name: 'given by UUID', gpus: [uuid1] });
  tracker.register({ id: 'nowhere', name: 'a GPU of another node', gpus: [NOWHERE] });
  replay = await startReplay(nvmlConfig(library, { paths: { procfs: fake.root } }), SPEED, { jobs: tracker });
  const ticks: Array<{ step: StepResult; attribution: Attribution }> = [];
  replay.exp.sampler.onTick.push((step, attribution) => ticks.push({ step, attribution }));
  await replay.run(1, PLAYED_S);

  const members = tracker.membership();
  for (const pid of onGpu1) expect([pid, members.get(pid)]).toEqual([pid, 'by-uuid']);
  for (const pid of onlyGpu0) expect([pid, members.get(pid)]).toEqual([pid, undefined]);

  let gpu1 = 0;
  let both = 0;
  let got = 0;
  let nowhere = 0;
  for (const { step, attribution } of ticks.filter((t) => t.step.dt > 0)) {
    const joules = (device: string) => step.series.find((s) => s.domain === 'gpu' && s.device === device)?.joules ?? 0;
    gpu1 += joules('gpu1');
    both += joules('gpu0') + joules('gpu1');
    got += attribution.jobs.find((j) => j.id === 'by-uuid')?.joules.compute ?? 0;
    nowhere += attribution.jobs.find((j) => j.id === 'nowhere')?.joules.compute ?? 0;
  }
  expect(gpu1).toBeGreaterThan(60 * (PLAYED_S - 2)); // an idle H200 draws ≥ 60 W
  // Every process on gpu1 is the job's, so all of gpu1's energy is; gpu0 only through the shared pid.
  expect(got).toBeGreaterThanOrEqual(gpu1 * (1 - 1e-9));
  expect(got).toBeLessThanOrEqual(both * (1 + 1e-9));
  expect(nowhere).toBe(0);
});
