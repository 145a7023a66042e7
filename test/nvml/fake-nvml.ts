import { execFileSync } from 'child_process';
import { existsSync, readFileSync, statSync } from 'fs';
import { join, resolve } from 'path';
import { performance } from 'perf_hooks';
import type * as Koffi from 'koffi';
import { parseConfig, type ConfigInput } from '../../exporter/src/config';
import { createExporter, type Exporter, type ExporterOptions } from '../../exporter/src/exporter';
import { NvmlSource } from '../../exporter/src/sources/nvml';
import { createLogger, type Logger } from '../../exporter/src/util/log';

/**
 * Helpers for tests that run the exporter against the fake libnvidia-ml (test/fakes/nvml).
 * The library is built on demand (gcc) when missing or older than its source.
 */

export const ROOT = resolve(__dirname, '../..');
export const FAKE_DIR = join(ROOT, 'test/fakes/nvml');
export const FAKE_LIBRARY = join(FAKE_DIR, 'build/libnvidia-ml.so.1');
export const FIXTURES = join(ROOT, 'test/fixtures/nvidia-h200');

/** Builds the fake NVML library if it is missing or stale; returns its path. */
export function ensureFakeNvml(): string {
  const src = join(FAKE_DIR, 'fake_nvml.c');
  if (!existsSync(FAKE_LIBRARY) || statSync(FAKE_LIBRARY).mtimeMs < statSync(src).mtimeMs) {
    execFileSync('sh', [join(FAKE_DIR, 'build.sh')], { stdio: 'pipe' });
  }
  return FAKE_LIBRARY;
}

export const FAKE_ENV = [
  'JOULEFLOW_FAKE_NVML_TRACE',
  'JOULEFLOW_FAKE_NVML_SPEED',
  'JOULEFLOW_FAKE_NVML_EPOCH',
  'JOULEFLOW_FAKE_NVML_GPUS',
  'JOULEFLOW_FAKE_NVML_FAULT_GPU',
  'JOULEFLOW_FAKE_NVML_NO_ENERGY',
  'JOULEFLOW_FAKE_NVML_RESET_AT',
  'JOULEFLOW_FAKE_NVML_LOST_AT',
  'JOULEFLOW_FAKE_NVML_HANG_MS',
  'JOULEFLOW_FAKE_NVML_MIG',
  'JOULEFLOW_FAKE_NVML_POWER_LIMIT_MW',
] as const;
export type FakeEnv = Partial<Record<(typeof FAKE_ENV)[number], string>>;

let libc: { setenv: (k: string, v: string, o: number) => number; unsetenv: (k: string) => number } | undefined;

/**
 * Sets the fake's switches in the real process environment (the fake reads them with getenv at
 * nvmlInit). Jest gives each test file a copy of process.env that never reaches getenv, so this
 * calls libc's setenv/unsetenv. Every switch not given is unset.
 */
export function setFakeEnv(env: FakeEnv): void {
  if (!libc) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- koffi is loaded lazily, as the exporter does
    const koffi = require('koffi') as typeof Koffi;
    const lib = koffi.load('libc.so.6');
    libc = { setenv: lib.func('int setenv(const char *k, const char *v, int o)'), unsetenv: lib.func('int unsetenv(const char *k)') };
  }
  for (const k of FAKE_ENV) {
    const v = env[k];
    if (v === undefined) libc.unsetenv(k);
    else libc.setenv(k, v, 1);
  }
}

export interface TraceSample {
  t: number;
  power_mw: number;
  energy_mj: number;
  util_gpu?: number;
  procs?: Array<{ pid: number; used_mem?: number; sm_util?: number }>;
}
export interface TraceGpu {
  name?: string;
  uuid?: string;
  samples: TraceSample[];
}

export function fixture(name: string): string {
  return join(FIXTURES, name);
}

/** The trace's GPUs, whichever of the two layouts the file uses. */
export function readTrace(name: string): TraceGpu[] {
  const j = JSON.parse(readFileSync(fixture(name), 'utf8')) as { gpus?: TraceGpu[]; samples?: TraceSample[] };
  return j.gpus ?? [{ samples: j.samples ?? [] }];
}

/** Trace duration in seconds (last sample's offset from the first). */
export function duration(g: TraceGpu): number {
  return g.samples[g.samples.length - 1].t - g.samples[0].t;
}

/** Counter value (mJ) of the sample replayed at offset x: the last one with offset <= x. */
export function energyAt(g: TraceGpu, x: number): number {
  const t0 = g.samples[0].t;
  let e = g.samples[0].energy_mj;
  for (const s of g.samples) {
    if (s.t - t0 > x) break;
    e = s.energy_mj;
  }
  return e;
}

export function collectingLogger(lines: string[]): Logger {
  return createLogger('debug', 'logfmt', (l) => lines.push(l));
}

/** A config with only NVML enabled (others optional), pointing at the given library. */
export function nvmlConfig(library: string, extra: ConfigInput = {}) {
  return parseConfig({
    ...extra,
    web: { listenAddress: '127.0.0.1:0' },
    sources: { rapl: false, cpuModel: false, dramModel: false, diskstats: false, netdev: false, nvml: true, ...extra.sources },
    nvml: { library },
    sample: { interval: '1s', ...extra.sample },
  });
}

export interface Replay {
  exp: Exporter;
  /** Trace seconds elapsed since the replay clock started. */
  elapsed(): number;
  /** Runs a tick at each multiple of `every` trace seconds up to and including `until`. */
  run(every: number, until: number, each?: (offset: number) => void): Promise<void>;
  /** Each tick's window on the replay clock (trace seconds before and after it), in order. */
  ticks: TickWindow[];
}

export interface TickWindow {
  start: number;
  end: number;
}

/**
 * Where the reads around trace instant x happened, from the ticks' windows, however late a loaded
 * machine ran them: the last read at or before x was no earlier than `before`, the first read
 * after x no later than `after`. With EPOCH=first-read the fake's clock starts at its first read,
 * somewhere in the first tick: a window [s, e] on the replay clock is [s - e0, e] on the trace's.
 */
export function readsAround(ticks: TickWindow[], x: number): { before: number; after: number } {
  const e0 = ticks[0].end;
  const onTrace = ticks.map((t) => ({ start: Math.max(0, t.start - e0), end: t.end }));
  const earlier = onTrace.filter((t) => t.end <= x);
  const later = onTrace.filter((t) => t.start > x);
  return {
    before: earlier.length ? earlier[earlier.length - 1].start : 0,
    after: later.length ? later[0].end : Infinity,
  };
}

/**
 * Waits (bounded) until every present NVML source knows its GPUs. NVML's init() returns after 2 s
 * with discovery still running (the GPUs join when it ends): on a loaded machine a replay started
 * then would tick without reads, and the fake's time 0 (its first read) would fall ticks after the
 * replay clock's.
 */
async function nvmlDiscovered(exp: Exporter): Promise<void> {
  const present = (name: string) => exp.sampler.statuses.find((s) => s.name === name)?.present === true;
  const pending = () => exp.sampler.sources.filter((s) => s instanceof NvmlSource && present(s.name) && s.devices.length === 0);
  for (const until = Date.now() + 30_000; pending().length > 0; await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() > until) throw new Error('timed out (30 s) waiting for NVML to discover its GPUs');
  }
}

/**
 * Creates an exporter whose clock runs `speed` times faster than real time, in step with the
 * fake's replay (EPOCH=first-read: the fake starts at the first tick's first read), so that the
 * model's Δt is trace time and the impossible-delta check sees trace-time power. The replay starts
 * once NVML has discovered its GPUs, unless `awaitGpus` is false (a test of a hanging driver).
 */
export async function startReplay(
  config: ReturnType<typeof nvmlConfig>,
  speed: number,
  opts: Partial<ExporterOptions> = {},
  { awaitGpus = true }: { awaitGpus?: boolean } = {},
): Promise<Replay> {
  let start: number | undefined;
  const base = Date.now();
  const elapsed = () => (start === undefined ? 0 : ((performance.now() - start) / 1000) * speed);
  const clock = () => base + elapsed() * 1000;
  const exp = await createExporter(config, { log: createLogger('error'), clock, ...opts });
  if (awaitGpus) await nvmlDiscovered(exp);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
  const ticks: TickWindow[] = [];
  return {
    exp,
    elapsed,
    ticks,
    async run(every, until, each) {
      start ??= performance.now();
      for (let k = 0; ; k++) {
        const target = Math.min(k * every, until);
        await sleep(((target - elapsed()) / speed) * 1000);
        const tickStart = elapsed();
        await exp.sampler.tick();
        ticks.push({ start: tickStart, end: elapsed() });
        each?.(elapsed());
        if (target >= until) break;
      }
    },
  };
}

type Labels = Record<string, string>;
interface Gettable {
  get(): Promise<{ values: Array<{ labels: Record<string, string | number | undefined>; value: number }> }>;
}

/** Sum of a metric's values whose labels include `match`. */
export async function metricSum(metric: Gettable, match: Labels): Promise<number> {
  const { values } = await metric.get();
  return values.filter((v) => Object.entries(match).every(([k, x]) => String(v.labels[k]) === x)).reduce((a, v) => a + v.value, 0);
}

/** Every value of a metric whose labels include `match`. */
export async function metricValues(metric: Gettable, match: Labels = {}): Promise<Array<{ labels: Labels; value: number }>> {
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(match).every(([k, x]) => String(v.labels[k]) === x))
    .map((v) => ({ labels: Object.fromEntries(Object.entries(v.labels).map(([k, x]) => [k, String(x)])), value: v.value }));
}

/**
 * The per-file setup of a suite replaying traces through the fake: the library built once, and
 * after each test the replay's exporter closed and the fake's switches cleared.
 */
export function fakeNvmlSuite(): { library: string; replay?: Replay } {
  const ctx = {} as { library: string; replay?: Replay };
  beforeAll(() => {
    ctx.library = ensureFakeNvml();
  });
  afterEach(async () => {
    await ctx.replay?.exp.close();
    ctx.replay = undefined;
    setFakeEnv({});
  });
  return ctx;
}
