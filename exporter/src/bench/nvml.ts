import { execFileSync } from 'child_process';
import { existsSync } from 'fs';
import { join, resolve } from 'path';
import { monitorEventLoopDelay, performance } from 'perf_hooks';
import { NvmlBinding } from '../sources/nvml-binding';
import { NvmlSource } from '../sources/nvml';
import { silentLogger } from '../util/log';
import { percentile, type BenchRow } from './table';

/**
 * NVML source costs against the fake libnvidia-ml (test/fakes/nvml) with 8 GPUs: how long a tick's
 * read takes, how much the event loop is delayed while it runs (NVML calls run on koffi's worker
 * threads), and CPU time per tick (process-wide, all threads). JOULEFLOW_FAKE_NVML_HANG_MS=4 makes
 * every call take 4 ms, like nvmlDeviceGetTotalEnergyConsumption on a real H200; a last scenario
 * makes the same energy reads synchronously on the main thread, to show what that would cost.
 */

const ROOT = resolve(__dirname, '../../..');
const FAKE_DIR = join(ROOT, 'test/fakes/nvml');
const LIBRARY = join(FAKE_DIR, 'build/libnvidia-ml.so.1');
// Two processes on every GPU, so each tick also reads processes and their SM utilisation.
const TRACE = join(ROOT, 'test/fixtures/nvidia-h200/two-gpu-trace.json');
const GPUS = 8;
const TICKS = 60;
const SPACING_MS = 25;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ms = (ns: number) => ns / 1e6;

function fakeEnv(hangMs: number): void {
  process.env.JOULEFLOW_FAKE_NVML_TRACE = TRACE;
  process.env.JOULEFLOW_FAKE_NVML_GPUS = String(GPUS);
  process.env.JOULEFLOW_FAKE_NVML_SPEED = '10';
  process.env.JOULEFLOW_FAKE_NVML_HANG_MS = String(hangMs);
}

async function asyncTicks(hangMs: number): Promise<BenchRow[]> {
  fakeEnv(hangMs);
  const src = new NvmlSource({ library: LIBRARY }, silentLogger);
  if (!(await src.init())) throw new Error('fake NVML did not initialise');
  const label = hangMs > 0 ? `${GPUS} GPUs, ${hangMs} ms/call` : `${GPUS} GPUs`;
  await src.sample(); // warm-up
  const durations: number[] = [];
  const loop = monitorEventLoopDelay({ resolution: 1 });
  const cpu0 = process.cpuUsage();
  loop.enable();
  for (let i = 0; i < TICKS; i++) {
    const t0 = performance.now();
    await src.sample();
    durations.push(performance.now() - t0);
    await sleep(SPACING_MS);
  }
  loop.disable();
  const cpu = process.cpuUsage(cpu0);
  await src.close();
  durations.sort((a, b) => a - b);
  return [
    { area: 'nvml', metric: 'sample() p50', value: percentile(durations, 50), unit: 'ms', note: label },
    { area: 'nvml', metric: 'sample() p99', value: percentile(durations, 99), unit: 'ms', note: label },
    { area: 'nvml', metric: 'event-loop delay p99', value: ms(loop.percentile(99)), unit: 'ms', note: `${label}, NVML worker thread` },
    { area: 'nvml', metric: 'event-loop delay max', value: ms(loop.max), unit: 'ms', note: `${label}, NVML worker thread` },
    {
      area: 'nvml',
      metric: 'CPU per tick',
      value: (cpu.user + cpu.system) / 1000 / TICKS,
      unit: 'ms',
      note: `${label}; process-wide, all threads; 3 NVML calls per GPU (+2 every 10th tick)`,
    },
  ];
}

/** The same loop without NVML: the machine's own timer and scheduling noise, for comparison. */
async function idleBaseline(): Promise<BenchRow[]> {
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  for (let i = 0; i < TICKS; i++) await sleep(SPACING_MS);
  loop.disable();
  return [
    { area: 'nvml', metric: 'event-loop delay p99', value: ms(loop.percentile(99)), unit: 'ms', note: 'baseline: same loop, no NVML' },
    { area: 'nvml', metric: 'event-loop delay max', value: ms(loop.max), unit: 'ms', note: 'baseline: same loop, no NVML' },
  ];
}

/** The blocking alternative: the same energy reads made synchronously on the main thread. */
async function syncBaseline(hangMs: number): Promise<BenchRow[]> {
  fakeEnv(hangMs);
  const nvml = await NvmlBinding.open(LIBRARY, 'async');
  if ((await nvml.init()) !== 0) throw new Error('fake NVML did not initialise');
  const handles = await Promise.all(Array.from({ length: GPUS }, async (_, i) => (await nvml.handleByIndex(i)).value));
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  for (let i = 0; i < 20; i++) {
    for (const h of handles) nvml.totalEnergySync(h);
    await sleep(SPACING_MS);
  }
  loop.disable();
  await nvml.shutdown();
  return [
    {
      area: 'nvml',
      metric: 'event-loop delay max',
      value: ms(loop.max),
      unit: 'ms',
      note: `${GPUS} GPUs, ${hangMs} ms/call, SYNC energy reads (not what the source does)`,
    },
  ];
}

export async function benchNvml(): Promise<BenchRow[]> {
  if (!existsSync(LIBRARY)) {
    try {
      execFileSync('sh', [join(FAKE_DIR, 'build.sh')], { stdio: 'pipe' });
    } catch (err) {
      return [
        { area: 'nvml', metric: 'skipped', value: 0, unit: '', note: `fake NVML not built: ${(err as Error).message.split('\n')[0]}` },
      ];
    }
  }
  const saved = { ...process.env };
  try {
    return [...(await idleBaseline()), ...(await asyncTicks(0)), ...(await asyncTicks(4)), ...(await syncBaseline(4))];
  } finally {
    for (const k of Object.keys(process.env)) if (k.startsWith('JOULEFLOW_FAKE_NVML_') && !(k in saved)) delete process.env[k];
  }
}
