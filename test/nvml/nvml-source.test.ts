import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { createExporter } from '../../exporter/src/exporter';
import { NvmlSource } from '../../exporter/src/sources/nvml';
import { collectingLogger, ensureFakeNvml, fixture, metricSum, nvmlConfig, readTrace, setFakeEnv } from './fake-nvml';

/** Start-up of the NVML source: absent library, library without driver, device identity. */

/**
 * These tests check what init() found, so it waits for discovery to end: the default (2 s, then
 * the GPUs join later) is a wait a loaded machine's worker start and library load can outlast.
 */
const DISCOVERY_WAIT_MS = 30_000;

let library: string;

beforeAll(() => {
  library = ensureFakeNvml();
});

afterEach(() => setFakeEnv({}));

const nvmlLines = (lines: string[]) => lines.filter((l) => /\bsource=nvml\b/.test(l));

test('no NVML library: init() is false after one info line, the exporter runs and reports source_up 0', async () => {
  const lines: string[] = [];
  const exp = await createExporter(nvmlConfig('/nonexistent/libnvidia-ml.so.1'), { log: collectingLogger(lines) });
  try {
    const st = exp.sampler.statuses.find((s) => s.name === 'nvml');
    expect(st?.present).toBe(false);
    const mine = nvmlLines(lines);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatch(/level=info/);
    expect(mine[0]).toMatch(/nonexistent/);
    await exp.sampler.tick();
    await exp.sampler.tick();
    expect(await metricSum(exp.metrics.sourceUp, { reader: 'nvml', device: '' })).toBe(0);
    expect(nvmlLines(lines)).toHaveLength(1); // not polled again, nothing more logged
    expect(await metricSum(exp.metrics.sourceErrors, { reader: 'nvml' })).toBe(0);
  } finally {
    await exp.close();
  }
});

test('library present but no driver (nvmlInit fails): init() is false after one info line naming the NVML error', async () => {
  setFakeEnv({}); // the fake without a trace answers NVML_ERROR_DRIVER_NOT_LOADED, as a GPU-less host would
  const lines: string[] = [];
  const src = new NvmlSource({ library, initWaitMs: DISCOVERY_WAIT_MS }, collectingLogger(lines).child({ source: 'nvml' }));
  expect(await src.init()).toBe(false);
  const mine = nvmlLines(lines);
  expect(mine).toHaveLength(1);
  expect(mine[0]).toMatch(/level=info/);
  expect(mine[0]).toMatch(/Driver Not Loaded/);
  await src.close();
});

test('device identity comes from NVML: names, UUIDs, PCI bus ids and power limits of the trace', async () => {
  const two = readTrace('two-gpu-trace.json');
  setFakeEnv({ JOULEFLOW_FAKE_NVML_TRACE: fixture('two-gpu-trace.json') });
  const src = new NvmlSource({ library, initWaitMs: DISCOVERY_WAIT_MS }, collectingLogger([]));
  try {
    expect(await src.init()).toBe(true);
    expect(src.devices.map((d) => d.device)).toEqual(['gpu0', 'gpu1']);
    expect(src.devices.map((d) => d.uuid)).toEqual(two.map((g) => g.uuid));
    expect(src.devices.map((d) => d.name)).toEqual(two.map((g) => g.name));
    expect(src.devices.map((d) => d.pciBusId)).toEqual(['00000000:18:00.0', '00000000:2A:00.0']);
    expect(src.devices.map((d) => d.powerLimitWatts)).toEqual([700, 700]);
    expect(src.devices.every((d) => !d.migEnabled && d.method === 'counter')).toBe(true);
    const res = await src.sample();
    expect(res.readings).toHaveLength(2);
    // The first read is the trace's first sample of each GPU (fake epoch is nvmlInit; speed 1).
    for (const [i, r] of res.readings.entries()) {
      expect(r.kind).toBe('counter');
      if (r.kind === 'counter') {
        expect(r.maxPowerWatts).toBe(700);
        expect(r.joules).toBeGreaterThanOrEqual(two[i].samples[0].energy_mj / 1000);
      }
    }
    expect(src.devices[0].temperatureCelsius).toBeGreaterThan(0);
  } finally {
    await src.close();
  }
});

test('JOULEFLOW_FAKE_NVML_GPUS replicates the trace to 8 GPUs with distinct UUIDs', async () => {
  setFakeEnv({ JOULEFLOW_FAKE_NVML_TRACE: fixture('trace.json'), JOULEFLOW_FAKE_NVML_GPUS: '8' });
  const src = new NvmlSource({ library, initWaitMs: DISCOVERY_WAIT_MS }, collectingLogger([]));
  try {
    expect(await src.init()).toBe(true);
    expect(src.devices).toHaveLength(8);
    expect(new Set(src.devices.map((d) => d.uuid)).size).toBe(8);
    const res = await src.sample();
    expect(res.readings.map((r) => r.device)).toEqual(['gpu0', 'gpu1', 'gpu2', 'gpu3', 'gpu4', 'gpu5', 'gpu6', 'gpu7']);
  } finally {
    await src.close();
  }
});

test.each([
  ['truncated', (t: string) => t.slice(0, Math.floor(t.length / 2))],
  ['followed by other text', (t: string) => `${t}\n{"samples": []}`],
  ['not an object', () => '[1, 2, 3]'],
])('malformed trace (%s): nvmlInit fails cleanly, init() is false after one info line, no crash', async (_what, mangle) => {
  const dir = mkdtempSync(join(tmpdir(), 'jouleflow-fake-nvml-'));
  const file = join(dir, 'trace.json');
  writeFileSync(file, mangle(readFileSync(fixture('trace.json'), 'utf8')));
  setFakeEnv({ JOULEFLOW_FAKE_NVML_TRACE: file });
  const lines: string[] = [];
  const src = new NvmlSource({ library, initWaitMs: DISCOVERY_WAIT_MS }, collectingLogger(lines).child({ source: 'nvml' }));
  try {
    expect(await src.init()).toBe(false);
    const mine = nvmlLines(lines);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatch(/level=info.*did not initialise/);
  } finally {
    await src.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
