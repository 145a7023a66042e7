import fc from 'fast-check';
import { COMPONENTS, type Component, type JobLabels, type JobView } from './core';
import { ExpositionRenderer } from './exposition';
import { EMPTY_SNAPSHOT, type NodeSeriesLabels, type NodeSeriesView, type SourceView, type TickSnapshot } from './snapshot';

/**
 * The renderer's caches (prefixes per series lifetime, lines by position, values reused while
 * unchanged, samples shared by both formats) against a reference written here from the format's
 * rules alone: over random sequences of ticks in which series appear, vanish, change order and
 * keep or change their values, every rendering equals the reference, in both formats.
 */

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const num = (v: number) => (Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v));

const NODE: NodeSeriesLabels[] = ['cpu', 'dev"1', 'ü\\n', 'gpu0', 'nvme0n1', 'eth0'].map((device, i) =>
  Object.freeze({ component: COMPONENTS[i % 4], device, source: i % 2 ? 'rapl' : 'model' }),
);
const JOBS: JobLabels[] = ['a', 'b"2', 'c\n'].map((id) => Object.freeze({ job_id: id, job_name: `n ${id}`, user: 'ü', scheduler: 'api' }));
const DEVICES = ['', 'gpu0', 'gpu"1', 'x\\y'];

// Few distinct values, so that values often stay the same from one tick to the next.
const value = fc.oneof(fc.constantFrom(0, -0, 1, 2.5, NaN, Infinity, 1e21, 0.1 + 0.2), fc.double());
const perComponent = fc.record(Object.fromEntries(COMPONENTS.map((c) => [c, value])) as Record<Component, fc.Arbitrary<number>>);

const tick = fc.record({
  node: fc
    .shuffledSubarray(NODE)
    .chain((labels) =>
      fc.tuple(
        ...labels.map((l) => fc.record({ joules: value, watts: fc.option(value, { nil: undefined }) }).map((v) => ({ labels: l, ...v }))),
      ),
    ),
  sources: fc.array(
    fc.tuple(
      fc.constantFrom('rapl', 'nvml'),
      fc.shuffledSubarray(DEVICES),
      fc.array(fc.constantFrom<0 | 1>(0, 1), { minLength: 4, maxLength: 4 }),
    ),
    {
      maxLength: 2,
    },
  ),
  jobs: fc.shuffledSubarray(JOBS).chain((labels) =>
    fc.tuple(
      ...labels.map((l) =>
        fc
          .record({
            energy: perComponent,
            estimated: fc.option(value, { nil: undefined }),
            watts: fc.option(perComponent, { nil: undefined }),
            start: fc.constantFrom(1_800_000_000_000, 1_800_000_000_123),
            end: fc.option(fc.constantFrom(1_800_000_060_000, 1_800_000_061_500), { nil: undefined }),
            work: fc.option(fc.dictionary(fc.constantFrom('tokens', 'steps'), value), { nil: undefined }),
          })
          .map((j) => ({ labels: l, ...j })),
      ),
    ),
  ),
  unattributed: perComponent,
});
type Tick = typeof tick extends fc.Arbitrary<infer T> ? T : never;

function snapshotOf(t: Tick, version: number): TickSnapshot {
  const node: NodeSeriesView[] = t.node.map((s) => ({
    labels: s.labels,
    domain: 'cpu',
    joules: s.joules,
    ...(s.watts === undefined ? {} : { watts: s.watts }),
  }));
  const sources: SourceView[] = t.sources.map(([name, devices, up]) => ({
    name,
    present: true,
    up: true,
    devices: devices.map((d, i) => [d, up[i]] as const),
    devicesDown: [],
  }));
  const jobs: JobView[] = t.jobs.map((j) => ({
    labels: j.labels,
    startMs: j.start,
    endMs: j.end,
    joules: {
      compute: { measured: j.energy.compute },
      transmit: (j.estimated === undefined
        ? { measured: j.energy.transmit }
        : { measured: j.energy.transmit, estimated: j.estimated }) as Record<string, number>,
      store: { measured: j.energy.store },
      cooling: { measured: j.energy.cooling },
    },
    watts: j.watts,
    work: j.work,
  }));
  return { ...EMPTY_SNAPSHOT, version, node, sources, jobs, unattributed: { joules: t.unattributed, watts: t.unattributed } };
}

/** The families the reference writes, sample lines only, from the snapshot by the format's rules. */
function reference(snap: TickSnapshot): Record<string, string> {
  const lines: Record<string, string[]> = {};
  const add = (name: string, labels: Record<string, string>, v: number) => {
    const l = Object.entries(labels).map(([k, x]) => `${k}="${esc(x)}"`);
    (lines[name] ??= []).push(`${name}${l.length ? `{${l.join(',')}}` : ''} ${num(v)}`);
  };
  for (const s of snap.node) add('jouleflow_node_energy_joules_total', { ...s.labels }, s.joules);
  for (const s of snap.node) if (s.watts !== undefined) add('jouleflow_node_power_watts', { ...s.labels }, s.watts);
  for (const j of snap.jobs) {
    for (const c of COMPONENTS)
      for (const [method, v] of Object.entries(j.joules[c]))
        add('jouleflow_job_energy_joules_total', { job_id: j.labels.job_id, component: c, method }, v);
  }
  for (const c of COMPONENTS)
    add('jouleflow_job_energy_joules_total', { job_id: 'unattributed', component: c, method: 'measured' }, snap.unattributed.joules[c]);
  for (const j of snap.jobs)
    if (j.watts && j.endMs === undefined)
      for (const c of COMPONENTS) add('jouleflow_job_power_watts', { job_id: j.labels.job_id, component: c }, j.watts[c]);
  for (const c of COMPONENTS) add('jouleflow_job_power_watts', { job_id: 'unattributed', component: c }, snap.unattributed.watts[c]);
  for (const j of snap.jobs) add('jouleflow_job_info', { ...j.labels }, 1);
  for (const j of snap.jobs) add('jouleflow_job_start_time_seconds', { job_id: j.labels.job_id }, j.startMs / 1000);
  for (const j of snap.jobs) if (j.endMs !== undefined) add('jouleflow_job_end_time_seconds', { job_id: j.labels.job_id }, j.endMs / 1000);
  for (const j of snap.jobs)
    for (const [unit, v] of Object.entries(j.work ?? {})) add('jouleflow_job_work_total', { job_id: j.labels.job_id, unit }, v);
  for (const s of snap.sources) for (const [device, up] of s.devices) add('jouleflow_source_up', { reader: s.name, device }, up);
  return Object.fromEntries(Object.entries(lines).map(([name, l]) => [name, l.join('\n') + '\n']));
}

const COVERED = [
  'jouleflow_node_energy_joules_total',
  'jouleflow_node_power_watts',
  'jouleflow_job_energy_joules_total',
  'jouleflow_job_power_watts',
  'jouleflow_job_info',
  'jouleflow_job_start_time_seconds',
  'jouleflow_job_end_time_seconds',
  'jouleflow_job_work_total',
  'jouleflow_source_up',
];

/** Sample lines per family of a rendering (HELP/TYPE and `# EOF` dropped). */
function samplesByFamily(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const family of text.split(/^# HELP /m).slice(1)) {
    const body = family
      .split('\n')
      .slice(2)
      .filter((l) => l && !l.startsWith('#'));
    if (body.length) out[body[0].slice(0, body[0].search(/[{ ]/))] = body.join('\n') + '\n';
  }
  return out;
}

test('every rendering equals the reference, in both formats, however series come, go, move and keep their values', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(tick, { minLength: 1, maxLength: 8 }), async (ticks) => {
      const renderer = new ExpositionRenderer();
      for (const [i, t] of ticks.entries()) {
        const snap = snapshotOf(t, i + 1);
        const expected = reference(snap);
        const prom = await renderer.render(snap, undefined, 'prometheus');
        const om = await renderer.render(snap, undefined, 'openmetrics');
        const sync = renderer.snapshotFamilies(snap, 'prometheus').join('\n');
        for (const text of [prom, om, sync]) {
          const got = samplesByFamily(text);
          for (const name of COVERED) expect(got[name]).toBe(expected[name]);
        }
      }
    }),
    { numRuns: 300 },
  );
}, 120_000);
