import { createDataFrame, FieldType } from '@grafana/data';

import {
  BASIC_JOBS,
  BASIC_WORK,
  carbonFrame,
  EFFICIENCY_JOBS,
  efficiencyFrames,
  seriesFrames,
  workFrames,
} from '../fixtures';
import { DEFAULT_OPTIONS } from '../types';
import {
  buildEfficiencyModel,
  extractWork,
  perMillionUnits,
  rowJoulesPerUnit,
  singularUnit,
  splitByUnit,
} from './efficiency';
import { buildModel } from './model';

const opts = { ...DEFAULT_OPTIONS, view: 'efficiency' as const };
const sum = (v: Record<string, number>) => Object.values(v).reduce((a, b) => a + b, 0);

describe('buildEfficiencyModel', () => {
  test('one group per unit, in name order; rows are J per unit per component', () => {
    const m = buildEfficiencyModel(efficiencyFrames(EFFICIENCY_JOBS), opts);
    expect(m.groups.map((g) => g.unit)).toEqual(['samples', 'steps', 'tokens']);
    const tokens = m.groups.find((g) => g.unit === 'tokens')!;
    expect(tokens.rows.map((r) => r.id)).toEqual(['j-302', 'j-301']); // sorted by J/token, descending
    const gpt2 = tokens.rows.find((r) => r.id === 'j-301')!;
    expect(gpt2.name).toBe('gpt2-124m');
    expect(gpt2.values.compute).toBeCloseTo(0.004, 15);
    expect(gpt2.total).toBeCloseTo(0.004 + 0.0002 + 0.00005 + 0.00224, 15);
  });

  test('units never share an axis: each group scales to its own largest job', () => {
    const m = buildEfficiencyModel(efficiencyFrames(EFFICIENCY_JOBS), opts);
    for (const g of m.groups) {
      const mine = EFFICIENCY_JOBS.filter((j) => j.unit === g.unit).map((j) => sum(j.values));
      expect({ unit: g.unit, max: g.maxTotal }).toEqual({ unit: g.unit, max: expect.closeTo(Math.max(...mine), 12) });
    }
    // the same job in steps is in its own group, not mixed with its tokens
    expect(m.groups.find((g) => g.unit === 'steps')!.rows.map((r) => r.id)).toEqual(['j-301']);
  });

  test('series without a unit label are counted as skipped, not drawn', () => {
    const m = buildEfficiencyModel(
      [...efficiencyFrames(EFFICIENCY_JOBS.slice(0, 1)), ...seriesFrames(BASIC_JOBS.slice(0, 1))],
      opts
    );
    expect(m.groups.map((g) => g.unit)).toEqual(['tokens']);
    expect(m.skippedSeries).toBe(Object.keys(BASIC_JOBS[0].values).length);
  });

  test('the carbon-intensity query is not a unit: no group, no skipped series', () => {
    const frames = [...efficiencyFrames(EFFICIENCY_JOBS), carbonFrame(400, 'E')];
    const m = buildEfficiencyModel(frames, { ...opts, co2Source: 'query', carbonRefId: 'E' });
    expect(m.skippedSeries).toBe(0);
    expect(buildModel(frames, { ...opts, co2Source: 'query', carbonRefId: 'E' }).carbonIntensity).toBe(400);
  });

  test('top N keeps the N highest per unit and counts the rest; no "others" sum of ratios', () => {
    const m = buildEfficiencyModel(efficiencyFrames(EFFICIENCY_JOBS), { ...opts, topN: 1 });
    const tokens = m.groups.find((g) => g.unit === 'tokens')!;
    expect(tokens.rows.map((r) => r.id)).toEqual(['j-302']);
    expect(tokens.hiddenJobs).toBe(1);
  });

  test('table frames (format=table) split by their unit column', () => {
    const frame = createDataFrame({
      refId: 'A',
      fields: [
        { name: 'job_id', type: FieldType.string, values: ['a', 'a', 'b'] },
        { name: 'unit', type: FieldType.string, values: ['tokens', 'tokens', 'steps'] },
        { name: 'component', type: FieldType.string, values: ['compute', 'cooling', 'compute'] },
        { name: 'Value #A', type: FieldType.number, values: [0.5, 0.25, 40] },
      ],
    });
    const { byUnit } = splitByUnit([frame], 'unit');
    expect([...byUnit.keys()].sort()).toEqual(['steps', 'tokens']);
    const m = buildEfficiencyModel([frame], opts);
    expect(m.groups.find((g) => g.unit === 'tokens')!.rows[0].total).toBeCloseTo(0.75, 12);
    expect(m.groups.find((g) => g.unit === 'steps')!.rows[0].total).toBe(40);
  });
});

describe('work totals and the table columns', () => {
  test('work frames are read by refId or metric name, max over nodes (a global count published twice)', () => {
    const w = extractWork(workFrames(BASIC_WORK), 'job_id', 'unit', 'W');
    expect(w.units).toEqual(['samples', 'tokens']);
    expect(w.byJob.get('j-101')).toEqual({ tokens: 3.0e9 });
    expect(extractWork(workFrames(BASIC_WORK, 'Z'), 'job_id', 'unit', 'W').byJob.get('j-103')).toEqual({
      tokens: 5.0e8,
    });
  });

  test('the energy split ignores the work frames; J per unit = job energy / work', () => {
    const frames = [...seriesFrames(BASIC_JOBS), ...workFrames(BASIC_WORK)];
    const model = buildModel(frames, DEFAULT_OPTIONS);
    const withoutWork = buildModel(seriesFrames(BASIC_JOBS), DEFAULT_OPTIONS);
    expect(model.grandTotal).toBe(withoutWork.grandTotal);
    const j101 = model.rows.find((r) => r.id === 'j-101')!;
    // 7.2 + 1.8 + 0.9 + 2.1 MJ over 3e9 tokens = 4 mJ/token
    expect(rowJoulesPerUnit(j101, 'tokens', model.work)).toBeCloseTo(12e6 / 3e9, 15);
    expect(rowJoulesPerUnit(j101, 'samples', model.work)).toBeUndefined();
    const others = { ...j101, kind: 'others' as const };
    expect(rowJoulesPerUnit(others, 'tokens', model.work)).toBeUndefined();
  });
});

describe('per million units', () => {
  test('4 mJ per token = 4 kJ per million = 1.111 Wh; CO₂ and cost scale with kWh', () => {
    const m = perMillionUnits(0.004, 400, 0.25);
    expect(m.kwh).toBeCloseTo(4000 / 3.6e6, 15);
    expect(m.gramsCo2).toBeCloseTo((4000 / 3.6e6) * 400, 12);
    expect(m.cost).toBeCloseTo((4000 / 3.6e6) * 0.25, 15);
    expect(perMillionUnits(1)).toEqual({ kwh: 1e6 / 3.6e6, gramsCo2: undefined, cost: undefined });
  });

  test('singular unit names for headings', () => {
    expect(['tokens', 'samples', 'steps', 'images', 'loss', 'x', 'batch'].map(singularUnit)).toEqual([
      'token',
      'sample',
      'step',
      'image',
      'loss',
      'x',
      'batch',
    ]);
  });
});
