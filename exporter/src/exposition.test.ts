import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { JobView } from './core';
import { ExpositionRenderer } from './exposition';
import { parseSamples } from './metrics';
import { EMPTY_SNAPSHOT, type TickSnapshot } from './snapshot';

function registryWithEverything(): Registry {
  const registry = new Registry();
  const c = new Counter({ name: 'x_total', help: 'a "quoted" help\\with\nnewline', labelNames: ['a', 'b'], registers: [registry] });
  const g = new Gauge({ name: 'y', help: 'gauge', registers: [registry] });
  const h = new Histogram({ name: 'z_seconds', help: 'hist', labelNames: ['s'], buckets: [0.1, 1], registers: [registry] });
  for (let i = 0; i < 25; i++) c.inc({ a: `v${i}`, b: 'q"uo\\te\nline ünï' }, i * 1.5);
  g.set(NaN);
  h.observe({ s: 'nvml' }, 0.05);
  h.observe({ s: 'nvml' }, 5);
  return registry;
}

test('registry families are written exactly as prom-client writes them (NaN spelled as Prometheus does)', async () => {
  const registry = registryWithEverything();
  const expected = (await registry.metrics()).replace(/ Nan$/gm, ' NaN');
  const text = await new ExpositionRenderer().render(EMPTY_SNAPSHOT, registry, 'prometheus');
  expect(text.endsWith(expected)).toBe(true);
});

test('OpenMetrics is written directly: counter families without _total, quoted HELP escaped, no blank line, # EOF', async () => {
  const text = await new ExpositionRenderer().render(EMPTY_SNAPSHOT, registryWithEverything(), 'openmetrics');
  expect(text).toMatch(/^# TYPE x counter$/m);
  expect(text).toMatch(/^x_total\{a="v1",b="q\\"uo\\\\te\\nline ünï"\} 1.5$/m);
  expect(text).toMatch(/^# HELP x a \\"quoted\\" help\\\\with\\nnewline$/m);
  expect(text).toMatch(/^# TYPE jouleflow_node_energy_joules counter$/m);
  expect(text).not.toMatch(/\n\n/);
  expect(text.endsWith('\n# EOF\n')).toBe(true);
  // …and the plain format of the same registry still names counters with _total.
  expect(await new ExpositionRenderer().render(EMPTY_SNAPSHOT, registryWithEverything(), 'prometheus')).toMatch(
    /^# TYPE x_total counter$/m,
  );
});

test('a job whose name changes gets new series; numbers change, prefixes are reused, every job sums up', () => {
  const renderer = new ExpositionRenderer();
  const labels = Object.freeze({ job_id: 'a', job_name: 'first', user: 'ada', scheduler: 'slurm' });
  const job = (l: JobView['labels'], compute: number): JobView => ({
    labels: l,
    startMs: 1_800_000_000_000,
    joules: { compute: { measured: compute }, transmit: { estimated: 1 }, store: { measured: 0 }, cooling: { measured: 2 } },
    watts: { compute: 3, transmit: 0, store: 0, cooling: 1 },
  });
  const snap = (jobs: JobView[], version: number): TickSnapshot => ({ ...EMPTY_SNAPSHOT, version, jobs });
  const one = renderer.snapshotFamilies(snap([job(labels, 10)], 1), 'prometheus').join('\n');
  const two = renderer.snapshotFamilies(snap([job(labels, 12.5)], 2), 'prometheus').join('\n');
  expect(one).toMatch(/^jouleflow_job_energy_joules_total\{job_id="a",component="compute",method="measured"\} 10$/m);
  expect(two).toMatch(/^jouleflow_job_energy_joules_total\{job_id="a",component="compute",method="measured"\} 12.5$/m);
  const renamed = renderer.snapshotFamilies(snap([job({ ...labels, job_name: 'second' }, 12.5)], 3), 'prometheus').join('\n');
  expect(renamed).toMatch(/^jouleflow_job_info\{job_id="a",job_name="second",user="ada",scheduler="slurm"\} 1$/m);
  expect(renamed).not.toMatch(/job_name="first"/);
  const energy = parseSamples(two).filter((s) => s.labels.job_id === 'a' && s.labels.method !== undefined);
  expect(energy.reduce((a, s) => a + s.value, 0)).toBe(12.5 + 1 + 0 + 2);
});

test('the PUE is absent until known; an ended job has an end time and no power', () => {
  const renderer = new ExpositionRenderer();
  const text = renderer.snapshotFamilies(EMPTY_SNAPSHOT, 'prometheus').join('\n');
  expect(text).toMatch(/^# TYPE jouleflow_pue_ratio gauge$/m);
  expect(text).not.toMatch(/^jouleflow_pue_ratio /m);
  const ended: JobView = {
    labels: Object.freeze({ job_id: 'e', job_name: 'e', user: '', scheduler: 'api' }),
    startMs: 1000,
    endMs: 61_000,
    joules: { compute: { measured: 1 }, transmit: { measured: 0 }, store: { measured: 0 }, cooling: { measured: 0 } },
    watts: { compute: 9, transmit: 0, store: 0, cooling: 0 },
  };
  const out = renderer.snapshotFamilies({ ...EMPTY_SNAPSHOT, version: 1, jobs: [ended], pue: 1.25 }, 'prometheus').join('\n');
  expect(out).toMatch(/^jouleflow_pue_ratio 1.25$/m);
  expect(out).toMatch(/^jouleflow_job_end_time_seconds\{job_id="e"\} 61$/m);
  expect(out).not.toMatch(/jouleflow_job_power_watts\{job_id="e"/);
  expect(out).toMatch(/^jouleflow_jobs\{state="ended"\} 1$/m);
});

test('work is one counter per job and unit, in OpenMetrics too; a job without work and a job gone have none', () => {
  const renderer = new ExpositionRenderer();
  const base = { startMs: 1000, joules: { compute: { measured: 1 }, transmit: {}, store: {}, cooling: {} } };
  const worker: JobView = {
    ...base,
    labels: Object.freeze({ job_id: 'w', job_name: 'w', user: '', scheduler: 'api' }),
    work: { tokens: 5554176, steps: 339 },
  };
  const idle: JobView = { ...base, labels: Object.freeze({ job_id: 'i', job_name: 'i', user: '', scheduler: 'api' }) };
  const text = renderer.snapshotFamilies({ ...EMPTY_SNAPSHOT, version: 1, jobs: [worker, idle] }, 'prometheus').join('\n');
  expect(text).toMatch(/^# HELP jouleflow_job_work_total \S/m);
  expect(text.split('\n').filter((l) => l.startsWith('jouleflow_job_work_total{'))).toEqual([
    'jouleflow_job_work_total{job_id="w",unit="tokens"} 5554176',
    'jouleflow_job_work_total{job_id="w",unit="steps"} 339',
  ]);
  const om = renderer.snapshotFamilies({ ...EMPTY_SNAPSHOT, version: 2, jobs: [worker] }, 'openmetrics').join('');
  expect(om).toMatch(/^# TYPE jouleflow_job_work counter$/m);
  expect(om).toMatch(/^jouleflow_job_work_total\{job_id="w",unit="tokens"\} 5554176$/m);
  const gone = renderer.snapshotFamilies({ ...EMPTY_SNAPSHOT, version: 3, jobs: [idle] }, 'prometheus').join('\n');
  expect(gone).not.toMatch(/^jouleflow_job_work_total\{/m);
});
