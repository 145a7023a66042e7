import {
  BASIC_JOBS,
  CARBON_INTENSITY,
  carbonFrame,
  expectedTotal,
  fixtureOptions,
  PANEL_FIXTURES,
  PRICE_PER_KWH,
  seriesFrames,
  tableFrame,
} from '../fixtures';
import { DEFAULT_OPTIONS } from '../types';
import { buildModel, rowCo2Grams, rowCost } from './model';

describe('buildModel', () => {
  it('gives the same rows for both Prometheus shapes', () => {
    const a = buildModel(seriesFrames(BASIC_JOBS, { range: true }), DEFAULT_OPTIONS);
    const b = buildModel([tableFrame(BASIC_JOBS)], DEFAULT_OPTIONS);
    expect(b.rows).toEqual(a.rows);
    expect(a.maxTotal).toBeCloseTo(expectedTotal(BASIC_JOBS[0]));
  });

  it('has no rows and no CO₂/cost by default for no data', () => {
    const m = buildModel([], DEFAULT_OPTIONS);
    expect(m.rows).toEqual([]);
    expect(m.maxTotal).toBe(0);
    expect(m.carbonIntensity).toBeUndefined();
    expect(m.pricePerKWh).toBeUndefined();
  });

  it('computes CO₂ from a fixed intensity: g = kWh × g/kWh', () => {
    const m = buildModel(seriesFrames(BASIC_JOBS), { ...DEFAULT_OPTIONS, co2Source: 'fixed', carbonIntensity: 500 });
    // 12 MJ = 3.333… kWh → 1666.7 g
    expect(rowCo2Grams(m.rows[0].total, m)).toBeCloseTo((12e6 / 3.6e6) * 500);
  });

  it('computes CO₂ from a carbon intensity query and cost from a price', () => {
    const m = buildModel(PANEL_FIXTURES.co2Cost.frames(), fixtureOptions('co2Cost'));
    expect(m.carbonIntensity).toBe(CARBON_INTENSITY);
    expect(m.pricePerKWh).toBe(PRICE_PER_KWH);
    expect(rowCost(3.6e6, m)).toBeCloseTo(PRICE_PER_KWH);
    expect(rowCo2Grams(3.6e6, m)).toBeCloseTo(CARBON_INTENSITY);
    expect(m.rows.some((r) => r.id === 'B' || r.name.includes('carbon'))).toBe(false);
  });

  it('leaves CO₂ undefined when the query has no carbon frame', () => {
    const m = buildModel(seriesFrames(BASIC_JOBS), { ...DEFAULT_OPTIONS, co2Source: 'query', carbonRefId: 'Z' });
    expect(m.carbonIntensity).toBeUndefined();
    expect(rowCo2Grams(1, m)).toBeUndefined();
  });

  it('ignores the carbon frame when CO₂ is off only if it is recognisable by metric name', () => {
    const m = buildModel([...seriesFrames(BASIC_JOBS), carbonFrame(100)], DEFAULT_OPTIONS);
    expect(m.jobCount).toBe(BASIC_JOBS.length);
  });
});
