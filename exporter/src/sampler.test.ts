import { COMPONENTS } from './core';
import { Metrics, parseSamples } from './metrics';
import { Sampler, type SamplerOptions } from './sampler';
import { EMPTY_SNAPSHOT } from './snapshot';
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

/** A source whose sample() throws before it returns a promise (not written as an async function). */
class ThrowingSource implements Source {
  readonly name = 'throwing';
  async init() {
    return true;
  }
  sample(): Promise<SampleResult> {
    throw new Error('bad state');
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

/** A sampler on an injected clock, with the options every test here shares. */
function testSampler(metrics: Metrics, clock: () => number, opts: Partial<SamplerOptions> & Pick<SamplerOptions, 'sources'>): Sampler {
  return new Sampler({
    metrics,
    log: silentLogger,
    intervalMs: 1000,
    timeoutMs: 200,
    cooling: { mode: 'pue', pue: 1.5, supplyAirCelsius: 20 },
    cpuCount: 1,
    clock,
    ...opts,
  });
}

/** A sample's value as a scrape of the current snapshot shows it (undefined when absent). */
async function value(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const text = (await metrics.render(false, false, false)).text;
  return parseSamples(
    text
      .split('\n')
      .filter((l) => l.startsWith(name + '{') || l.startsWith(name + ' '))
      .join('\n'),
  ).find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
}

test('a failing, a throwing and a hanging source are reported down while the others keep sampling', async () => {
  const metrics = new Metrics();
  let now = 0;
  const good = new CountingSource('rapl', 50);
  const hanging = new HangingSource();
  const sampler = new Sampler({
    sources: [good, new FailingSource(), new ThrowingSource(), hanging],
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
  expect(await value(metrics, 'jouleflow_source_up', { reader: 'rapl', device: '' })).toBe(1);
  expect(await value(metrics, 'jouleflow_source_up', { reader: 'broken', device: '' })).toBe(0);
  expect(await value(metrics, 'jouleflow_source_up', { reader: 'hanging', device: '' })).toBe(0);
  expect(await value(metrics, 'jouleflow_source_errors_total', { reader: 'broken', reason: 'read' })).toBe(5);
  expect(await value(metrics, 'jouleflow_source_up', { reader: 'throwing', device: '' })).toBe(0);
  expect(await value(metrics, 'jouleflow_source_errors_total', { reader: 'throwing', reason: 'read' })).toBe(5);
  expect(await value(metrics, 'jouleflow_source_errors_total', { reader: 'hanging', reason: 'timeout' })).toBe(5);
  // A hanging read is not restarted while it is still in flight.
  expect(hanging.calls).toBe(1);
  // Cooling from the PUE model: (1.5 − 1) × IT, all unattributed without jobs.
  expect(await value(metrics, 'jouleflow_node_energy_joules_total', { component: 'cooling', source: 'model' })).toBe(100);
  expect(await value(metrics, 'jouleflow_job_energy_joules_total', { job_id: 'unattributed', component: 'compute' })).toBe(200);
  expect(await value(metrics, 'jouleflow_job_energy_joules_total', { job_id: 'unattributed', component: 'cooling' })).toBe(100);
  expect(await value(metrics, 'jouleflow_pue_ratio', {})).toBe(1.5);
  await sampler.stop();
});

test('scrapes of one snapshot share one rendering; a new snapshot renders anew', async () => {
  const metrics = new Metrics();
  const a = await metrics.render(false, false);
  const b = await metrics.render(false, false);
  expect(b).toBe(a);
  metrics.publish({ ...EMPTY_SNAPSHOT, version: 1 });
  const b1 = await metrics.render(false, false, false);
  expect(b1).not.toBe(a);
  expect(await metrics.render(false, false)).toBe(b1);
  const om = await metrics.render(true, true);
  expect(om.contentType).toMatch(/openmetrics/);
  expect(om.text).toMatch(/# EOF\s*$/);
  expect(om.gzip!.length).toBeGreaterThan(0);
  expect(om.text).toMatch(/^# TYPE jouleflow_node_energy_joules counter$/m);
  // The exporter's own process metrics, as every Prometheus exporter has them.
  expect(om.text).toMatch(/^process_resident_memory_bytes \d+/m);
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
  expect(await value(metrics, 'jouleflow_source_errors_total', { reader: 'sampler', reason: 'tick' })).toBe(1);
  fail = false;
  devices = ['eth0'];
  now += 1000;
  await sampler.tick();
  expect(sampler.tickCount).toBe(3);
  expect(await value(metrics, 'jouleflow_source_up', { reader: 'netdev', device: 'eth1' })).toBe(0);
  expect(await value(metrics, 'jouleflow_node_power_watts', { device: 'eth1' })).toBeUndefined();
  expect(await value(metrics, 'jouleflow_node_power_watts', { device: 'eth0' })).toBeCloseTo(1 + 1000 * 1e-9, 12);
});

test('a failing jobs tracker costs neither the node its energy nor the tick its end', async () => {
  const metrics = new Metrics();
  let now = 0;
  let calls = 0;
  const sampler = testSampler(metrics, () => now, {
    sources: [new CountingSource('rapl', 50)],
    cpuCount: 4,
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
  expect(await value(metrics, 'jouleflow_source_errors_total', { reader: 'jobs', reason: 'read' })).toBe(2);
  expect(await value(metrics, 'jouleflow_source_errors_total', { reader: 'jobs', reason: 'record' })).toBe(5);
  expect(await value(metrics, 'jouleflow_source_errors_total', { reader: 'sampler', reason: 'tick' })).toBeUndefined();
});

test('a source whose init() hangs is down with init_timeout while the others sample; it joins when ready', async () => {
  const metrics = new Metrics();
  let now = 0;
  let ready: (v: boolean) => void = () => undefined;
  const late = new CountingSource('late', 7);
  late.init = () => new Promise<boolean>((r) => (ready = r));
  const sampler = testSampler(metrics, () => now, { sources: [new CountingSource('rapl', 50), late], initTimeoutMs: 20 });
  await sampler.init(); // returns at the init timeout: it does not wait for `late`
  for (let i = 0; i < 3; i++) {
    await sampler.tick();
    now += 1000;
  }
  expect(await value(metrics, 'jouleflow_node_energy_joules_total', { source: 'rapl' })).toBe(100);
  expect(await value(metrics, 'jouleflow_source_up', { reader: 'late', device: '' })).toBe(0);
  expect(await value(metrics, 'jouleflow_source_errors_total', { reader: 'late', reason: 'init_timeout' })).toBe(1);
  expect(sampler.statuses.find((s) => s.name === 'late')?.lastError).toBe('init_timeout');
  ready(true);
  await new Promise((r) => setImmediate(r));
  for (let i = 0; i < 2; i++) {
    await sampler.tick();
    now += 1000;
  }
  expect(await value(metrics, 'jouleflow_source_up', { reader: 'late', device: '' })).toBe(1);
  expect(await value(metrics, 'jouleflow_node_energy_joules_total', { source: 'late' })).toBe(7);
});

test('the PUE is not published before an interval with IT energy (never NaN)', async () => {
  const metrics = new Metrics();
  let now = 0;
  const sampler = testSampler(metrics, () => now, {
    sources: [new CountingSource('rapl', 50)],
    cooling: { mode: 'pue', pue: 1.4, supplyAirCelsius: 20 },
  });
  await sampler.init();
  await sampler.tick();
  const first = (await metrics.render(false, false, false)).text;
  expect(first).not.toMatch(/^jouleflow_pue_ratio /m);
  now += 1000;
  await sampler.tick();
  expect(await value(metrics, 'jouleflow_pue_ratio', {})).toBeCloseTo(1.4, 12);
});

test('every scrape sees one whole tick: Σ jobs + unattributed = node for every component', async () => {
  const metrics = new Metrics();
  let now = 0;
  const jobJoules: Record<string, number> = { compute: 0, transmit: 0, store: 0, cooling: 0 };
  const labels = Object.freeze({ job_id: 'j', job_name: 'j', user: '', scheduler: 'api' });
  const sampler = testSampler(metrics, () => now, {
    sources: [new CountingSource('rapl', 50)],
    cpuCount: 4,
    jobs: {
      usage: async () => [{ id: 'j', cpuSeconds: 1, ioBytes: 0, gpuShares: {} }],
      record: (_step, attribution) => {
        for (const share of attribution.jobs) for (const c of COMPONENTS) jobJoules[c] += share.joules[c];
      },
      view: () => ({
        jobs: [
          {
            labels,
            startMs: 0,
            joules: {
              compute: { measured: jobJoules.compute },
              transmit: { measured: jobJoules.transmit },
              store: { measured: jobJoules.store },
              cooling: { measured: jobJoules.cooling },
            },
          },
        ],
        rejected: new Map(),
        errors: new Map(),
      }),
    },
  });
  await sampler.init();
  const scrapes: Array<Promise<string>> = [];
  for (let i = 0; i < 6; i++) {
    const tick = sampler.tick();
    // A scrape while the tick runs gets the previous snapshot, whole.
    scrapes.push(metrics.render(false, false).then((r) => r.text));
    await tick;
    now += 1000;
  }
  scrapes.push(metrics.render(false, false, false).then((r) => r.text));
  const family = (text: string, name: string) =>
    parseSamples(
      text
        .split('\n')
        .filter((l) => l.startsWith(name + '{'))
        .join('\n'),
    );
  for (const text of await Promise.all(scrapes)) {
    for (const c of COMPONENTS) {
      const node = family(text, 'jouleflow_node_energy_joules_total').filter((s) => s.labels.component === c);
      const jobs = family(text, 'jouleflow_job_energy_joules_total').filter((s) => s.labels.component === c);
      const sum = (xs: Array<{ value: number }>) => xs.reduce((a, s) => a + s.value, 0);
      expect(sum(jobs)).toBeCloseTo(sum(node), 9);
    }
  }
  // Independently: 5 intervals of 50 J of compute, half of it cooling on top (PUE 1.5).
  const last = await scrapes[scrapes.length - 1];
  expect(family(last, 'jouleflow_node_energy_joules_total').reduce((a, s) => a + s.value, 0)).toBeCloseTo(5 * 50 * 1.5, 9);
  expect(jobJoules.compute).toBeGreaterThan(0);
});
