import { Metrics } from './metrics';
import { Sampler } from './sampler';
import type { SampleResult, Source } from './sources/types';
import { SourceError } from './sources/types';
import { silentLogger } from './util/log';

/** A source whose counter advances by `wattsPerTick` joules per sample. */
class CountingSource implements Source {
  joules = 0;
  constructor(
    readonly name: string,
    private readonly step: number,
  ) {}
  async init() {
    return true;
  }
  async sample(): Promise<SampleResult> {
    this.joules += this.step;
    return {
      readings: [{ kind: 'counter', component: 'compute', domain: 'cpu', device: 'package-0', source: this.name, joules: this.joules }],
    };
  }
}

class FailingSource implements Source {
  readonly name = 'broken';
  async init() {
    return true;
  }
  async sample(): Promise<SampleResult> {
    throw new SourceError('read', 'device on fire');
  }
}

class HangingSource implements Source {
  readonly name = 'hanging';
  calls = 0;
  async init() {
    return true;
  }
  sample(): Promise<SampleResult> {
    this.calls++;
    return new Promise(() => undefined);
  }
}

async function value(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const m = metrics.registry.getSingleMetric(name);
  const data = await m!.get();
  return data.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
}

test('a failing and a hanging source are reported down while the others keep sampling', async () => {
  const metrics = new Metrics();
  let now = 0;
  const good = new CountingSource('rapl', 50);
  const hanging = new HangingSource();
  const sampler = new Sampler({
    sources: [good, new FailingSource(), hanging],
    metrics,
    log: silentLogger,
    intervalMs: 1000,
    timeoutMs: 20,
    cooling: { mode: 'pue', pue: 1.5, supplyAirCelsius: 20 },
    cpuCount: 4,
    clock: () => now,
  });
  await sampler.init();
  for (let i = 0; i < 5; i++) {
    await sampler.tick();
    now += 1000;
  }
  expect(await value(metrics, 'jouleflow_node_energy_joules_total', { source: 'rapl' })).toBe(200);
  expect(await value(metrics, 'jouleflow_node_power_watts', { source: 'rapl' })).toBe(50);
  expect(await value(metrics, 'jouleflow_source_up', { source: 'rapl', device: '' })).toBe(1);
  expect(await value(metrics, 'jouleflow_source_up', { source: 'broken', device: '' })).toBe(0);
  expect(await value(metrics, 'jouleflow_source_up', { source: 'hanging', device: '' })).toBe(0);
  expect(await value(metrics, 'jouleflow_source_errors_total', { source: 'broken', reason: 'read' })).toBe(5);
  expect(await value(metrics, 'jouleflow_source_errors_total', { source: 'hanging', reason: 'timeout' })).toBe(5);
  // A hanging read is not restarted while it is still in flight.
  expect(hanging.calls).toBe(1);
  // Cooling from the PUE model: (1.5 − 1) × IT, all unattributed without jobs.
  expect(await value(metrics, 'jouleflow_node_energy_joules_total', { component: 'cooling', source: 'model' })).toBe(100);
  expect(await value(metrics, 'jouleflow_job_energy_joules_total', { job_id: 'unattributed', component: 'compute' })).toBe(200);
  expect(await value(metrics, 'jouleflow_job_energy_joules_total', { job_id: 'unattributed', component: 'cooling' })).toBe(100);
  expect(await value(metrics, 'jouleflow_pue_ratio', {})).toBe(1.5);
  await sampler.stop();
});

test('scrapes of one tick share one rendering; a new tick renders anew', async () => {
  const metrics = new Metrics();
  const a = await metrics.render(false, false);
  const b = await metrics.render(false, false);
  expect(b).toBe(a);
  metrics.invalidate();
  expect(await metrics.render(false, false)).not.toBe(a);
  const om = await metrics.render(true, true);
  expect(om.contentType).toMatch(/openmetrics/);
  expect(om.text).toMatch(/# EOF\s*$/);
  expect(om.gzip!.length).toBeGreaterThan(0);
  expect(om.text).toMatch(/^# TYPE jouleflow_node_energy_joules counter$/m);
  // OpenMetrics has no blank lines (Prometheus rejects the scrape), and HELP escapes quotes.
  expect(om.text).not.toMatch(/\n\n/);
  expect(om.text).toMatch(/^# HELP jouleflow_job_energy_joules .*job_id=\\"unattributed\\"/m);
  // Rendering OpenMetrics must not rename the plain format's counters.
  metrics.invalidate();
  expect((await metrics.render(false, false)).text).toMatch(/^# TYPE jouleflow_node_energy_joules_total counter$/m);
});

test('a tick that throws is counted and sampling goes on; a vanished device is reported down', async () => {
  const metrics = new Metrics();
  let now = 0;
  let devices = ['eth0', 'eth1'];
  const nics: Source = {
    name: 'netdev',
    init: async () => true,
    sample: async () => ({
      readings: devices.map((device) => ({
        kind: 'activity' as const,
        component: 'transmit' as const,
        domain: 'nic' as const,
        device,
        source: 'netdev',
        counters: { rx_bytes: now },
        joulesPerUnit: { rx_bytes: 1e-9 },
        idleWatts: 1,
      })),
    }),
  };
  let fail = false;
  const sampler = new Sampler({
    sources: [nics],
    metrics,
    log: silentLogger,
    intervalMs: 1000,
    timeoutMs: 500,
    cooling: { mode: 'pue', pue: 1.5, supplyAirCelsius: 20 },
    cpuCount: 1,
    clock: () => now,
  });
  // (A failing jobs tracker no longer fails the tick, see below; a failing listener does.)
  sampler.onTick.push(() => {
    if (fail) throw new Error('listener on fire');
  });
  await sampler.init();
  await sampler.tick();
  now += 1000;
  fail = true;
  await expect(sampler.tick()).resolves.toBeUndefined();
  expect(await value(metrics, 'jouleflow_source_errors_total', { source: 'sampler', reason: 'tick' })).toBe(1);
  fail = false;
  devices = ['eth0'];
  now += 1000;
  await sampler.tick();
  expect(sampler.tickCount).toBe(3);
  expect(await value(metrics, 'jouleflow_source_up', { source: 'netdev', device: 'eth1' })).toBe(0);
  expect(await value(metrics, 'jouleflow_node_power_watts', { device: 'eth1' })).toBeUndefined();
  expect(await value(metrics, 'jouleflow_node_power_watts', { device: 'eth0' })).toBeCloseTo(1 + 1000 * 1e-9, 12);
});

test('a failing jobs tracker costs neither the node its energy nor the tick its end', async () => {
  const metrics = new Metrics();
  let now = 0;
  let calls = 0;
  const sampler = new Sampler({
    sources: [new CountingSource('rapl', 50)],
    metrics,
    log: silentLogger,
    intervalMs: 1000,
    timeoutMs: 200,
    cooling: { mode: 'pue', pue: 1.5, supplyAirCelsius: 20 },
    cpuCount: 4,
    clock: () => now,
    jobs: {
      usage: () => (++calls % 2 ? Promise.reject(new Error('EIO')) : Promise.resolve([])),
      record: () => {
        throw new Error('SQLITE_FULL: database or disk is full');
      },
    },
  });
  await sampler.init();
  for (let i = 0; i < 5; i++) {
    await sampler.tick();
    now += 1000;
  }
  expect(await value(metrics, 'jouleflow_node_energy_joules_total', { source: 'rapl' })).toBe(200);
  expect(sampler.tickCount).toBe(5);
  expect(await value(metrics, 'jouleflow_source_errors_total', { source: 'jobs', reason: 'read' })).toBe(2);
  expect(await value(metrics, 'jouleflow_source_errors_total', { source: 'jobs', reason: 'record' })).toBe(5);
  expect(await value(metrics, 'jouleflow_source_errors_total', { source: 'sampler', reason: 'tick' })).toBeUndefined();
});

test('a scrape arriving while a step is applied in slices never sees part of it', async () => {
  const metrics = new Metrics();
  const n = 2500;
  const series = Array.from({ length: n }, (_, i) => ({
    component: 'compute' as const,
    domain: 'cpu' as const,
    device: `core-${i}`,
    source: 'rapl',
    joules: 1,
    watts: 1,
  }));
  const attribution = { jobs: [], unattributed: { compute: n, transmit: 0, store: 0, cooling: 0 } };
  // No scrape has rendered the current version yet (nobody scraped for a while).
  const applying = metrics.applyStepSliced({ t: 1000, dt: 1, series, events: [] }, attribution, 1000);
  await new Promise<void>((r) => setImmediate(r));
  const scrape = metrics.render(false, false);
  await applying;
  metrics.invalidate();
  const text = (await scrape).text;
  const node = text.match(/^jouleflow_node_energy_joules_total\{/gm)?.length ?? 0;
  const unattributed = /^jouleflow_job_energy_joules_total\{job_id="unattributed",component="compute"[^}]*\} 2500$/m.test(text);
  // All of the step or none of it.
  expect([node, unattributed]).toEqual(node === 0 ? [0, false] : [n, true]);
  // The next scrape of the tick is served from the same rendering.
  const next = await metrics.render(false, false);
  expect(next.text).toBe(text);
});
