import { createDataFrame, FieldType } from '@grafana/data';

import { BASIC_JOBS, carbonFrame, seriesFrames, tableFrame } from '../fixtures';
import { extractSamples, ExtractOptions, reduceValues } from './extract';

const OPTS: ExtractOptions = {
  groupByLabel: 'job_id',
  splitLabel: 'component',
  nameLabel: 'job_name',
  inputUnit: 'joule',
  reducer: 'lastNotNull',
};

const key = (s: { group: string; component: string }) => `${s.group}/${s.component}`;

describe('reduceValues', () => {
  it('takes the last non-null value', () => {
    expect(reduceValues([1, 2, null, undefined], 'lastNotNull')).toBe(2);
  });
  it('returns null when there is no value', () => {
    expect(reduceValues([], 'lastNotNull')).toBeNull();
    expect(reduceValues([null], 'sum')).toBeNull();
  });
  it('sums and takes the max', () => {
    expect(reduceValues([1, 2, 3], 'sum')).toBe(6);
    expect(reduceValues([1, 5, 3], 'max')).toBe(5);
  });
  it('keeps NaN / Inf (strings from Prometheus too) so they show as invalid', () => {
    expect(reduceValues([1, NaN], 'lastNotNull')).toBeNaN();
    expect(reduceValues(['NaN'], 'lastNotNull')).toBeNaN();
    expect(reduceValues(['+Inf'], 'lastNotNull')).toBe(Infinity);
    expect(reduceValues([1, NaN, 2], 'sum')).toBeNaN();
    expect(reduceValues(['12.5'], 'lastNotNull')).toBe(12.5);
  });
});

describe('extractSamples', () => {
  it('reads one frame per series (range query: last non-null point)', () => {
    const { samples, skipped } = extractSamples(seriesFrames(BASIC_JOBS, { range: true }), OPTS);
    expect(skipped).toBe(0);
    expect(samples).toHaveLength(BASIC_JOBS.reduce((n, j) => n + Object.keys(j.values).length, 0));
    const byKey = new Map(samples.map((s) => [key(s), s]));
    expect(byKey.get('j-101/compute')).toEqual({
      group: 'j-101',
      component: 'compute',
      value: 7.2e6,
      name: 'llama-finetune',
    });
    expect(byKey.get('j-103/compute')?.name).toBeUndefined();
    // unknown component label value → other
    expect(byKey.get('j-104/other')?.value).toBe(0.1e6);
  });

  it('reads instant series frames', () => {
    const { samples } = extractSamples(seriesFrames(BASIC_JOBS), OPTS);
    expect(samples.find((s) => key(s) === 'j-102/cooling')?.value).toBe(1.0e6);
  });

  it('reads a table frame (format=table) and gives the same samples as the series shape', () => {
    const fromTable = extractSamples([tableFrame(BASIC_JOBS)], OPTS).samples;
    const fromSeries = extractSamples(seriesFrames(BASIC_JOBS), OPTS).samples;
    const norm = (xs: typeof fromTable) => xs.map((s) => ({ ...s })).sort((a, b) => key(a).localeCompare(key(b)));
    expect(norm(fromTable)).toEqual(norm(fromSeries));
  });

  it('reduces a range query in table format per series instead of summing every time step', () => {
    // format=table + range query: one row per series and step (Grafana's Prometheus table transform).
    const t0 = Date.UTC(2025, 0, 1);
    const frame = createDataFrame({
      refId: 'A',
      fields: [
        { name: 'Time', type: FieldType.time, values: [t0, t0 + 60_000, t0 + 120_000, t0, t0 + 60_000, t0 + 120_000] },
        {
          name: 'component',
          type: FieldType.string,
          values: ['compute', 'compute', 'compute', 'cooling', 'cooling', 'cooling'],
        },
        { name: 'instance', type: FieldType.string, values: ['n1', 'n1', 'n1', 'n1', 'n1', 'n1'] },
        { name: 'job_id', type: FieldType.string, values: ['a', 'a', 'a', 'a', 'a', 'a'] },
        { name: 'job_name', type: FieldType.string, values: ['old', 'new', 'new', 'old', 'new', 'new'] },
        { name: 'Value', type: FieldType.number, values: [100, 200, 300, 10, 20, null] },
      ],
    });
    const last = extractSamples([frame], OPTS).samples;
    expect(last.map((s) => [key(s), s.value, s.name])).toEqual([
      ['a/compute', 300, 'new'],
      ['a/cooling', 20, 'new'],
    ]);
    const max = extractSamples([frame], { ...OPTS, reducer: 'max' }).samples;
    expect(max.map((s) => s.value)).toEqual([300, 20]);
    // rows of different series (here two instances) are still added up
    const twoNodes = createDataFrame({
      fields: [
        { name: 'Time', type: FieldType.time, values: [t0, t0] },
        { name: 'instance', type: FieldType.string, values: ['n1', 'n2'] },
        { name: 'job_id', type: FieldType.string, values: ['a', 'a'] },
        { name: 'Value #A', type: FieldType.number, values: [5, 7] },
      ],
    });
    expect(extractSamples([twoNodes], OPTS).samples.map((s) => s.value)).toEqual([5, 7]);
  });

  it('reads a wide table with one column per component', () => {
    const frame = createDataFrame({
      fields: [
        { name: 'job_id', type: FieldType.string, values: ['a', 'b'] },
        { name: 'compute', type: FieldType.number, values: [10, 20] },
        { name: 'cooling', type: FieldType.number, values: [1, null] },
      ],
    });
    const { samples } = extractSamples([frame], OPTS);
    expect(samples.map(key).sort()).toEqual(['a/compute', 'a/cooling', 'b/compute']);
  });

  it('honours custom label names', () => {
    const frame = createDataFrame({
      fields: [
        { name: 'Time', type: FieldType.time, values: [1] },
        {
          name: 'Value',
          type: FieldType.number,
          values: [5],
          labels: { exported_job: 'x', part: 'store', title: 'X' },
        },
      ],
    });
    const { samples } = extractSamples([frame], {
      ...OPTS,
      groupByLabel: 'exported_job',
      splitLabel: 'part',
      nameLabel: 'title',
    });
    expect(samples).toEqual([{ group: 'x', component: 'store', value: 5, name: 'X' }]);
  });

  it('counts series without the grouping label as skipped', () => {
    const frame = createDataFrame({
      fields: [
        { name: 'Time', type: FieldType.time, values: [1] },
        { name: 'Value', type: FieldType.number, values: [5], labels: { component: 'compute' } },
      ],
    });
    expect(extractSamples([frame], OPTS)).toEqual({ samples: [], skipped: 1, carbonIntensity: undefined });
  });

  it('converts the query unit to joules', () => {
    const { samples } = extractSamples(seriesFrames([{ job_id: 'a', values: { compute: 2 } }]), {
      ...OPTS,
      inputUnit: 'kwatth',
    });
    expect(samples[0].value).toBe(7.2e6);
  });

  it('takes the carbon intensity from the carbon query and does not treat it as energy', () => {
    const frames = [...seriesFrames(BASIC_JOBS.slice(0, 1)), carbonFrame(420, 'C')];
    const byRefId = extractSamples(frames, { ...OPTS, carbonRefId: 'C' });
    expect(byRefId.carbonIntensity).toBe(420);
    expect(byRefId.samples.every((s) => s.group === 'j-101')).toBe(true);
    // recognised by metric name even without the refId
    expect(extractSamples(frames, OPTS).carbonIntensity).toBe(420);
  });

  it('copes with no frames, empty frames and undefined', () => {
    expect(extractSamples(undefined, OPTS).samples).toEqual([]);
    expect(extractSamples([createDataFrame({ fields: [] })], OPTS).samples).toEqual([]);
  });
});
