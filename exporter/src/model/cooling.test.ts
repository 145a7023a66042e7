import type { CounterReading, Reading } from '../core';
import { CoolingAccounting, coolingFactor, copAt, modelCooling } from './cooling';
import { EnergyModel } from './energy';

describe('cooling models', () => {
  test('COP of a CRAC unit (Moore et al. 2005): 2.0 at 15 °C, 3.2 at 20 °C, 4.7 at 25 °C', () => {
    expect(copAt(15)).toBeCloseTo(0.0068 * 225 + 0.0008 * 15 + 0.458, 12);
    expect(copAt(15)).toBeCloseTo(2.0, 1);
    expect(copAt(20)).toBeCloseTo(3.194, 3);
    expect(copAt(25)).toBeCloseTo(4.728, 3);
  });

  test('PUE mode: cooling = IT × (PUE − 1); 1 kWh of IT at PUE 1.56 needs 0.56 kWh of cooling', () => {
    const s = modelCooling(3.6e6, 3600, { mode: 'pue', pue: 1.56, supplyAirCelsius: 20 });
    expect(s.joules).toBeCloseTo(0.56 * 3.6e6, 6);
    expect(s.watts).toBeCloseTo(560, 9);
    expect(s.source).toBe('model');
  });

  test('COP mode: cooling = IT / COP', () => {
    expect(coolingFactor({ mode: 'cop', pue: 1.56, supplyAirCelsius: 20 })).toBeCloseTo(1 / 3.194, 6);
    expect(modelCooling(1000, 1, { mode: 'cop', pue: 1.56, supplyAirCelsius: 25 }).joules).toBeCloseTo(1000 / 4.728, 6);
  });
});

describe('heat removed → electrical cooling energy through the COP', () => {
  const cfg = { mode: 'pue' as const, pue: 1.5, supplyAirCelsius: 20 };
  /** COP of the CRAC curve at 20 °C and 25 °C, written out: 0.0068·T² + 0.0008·T + 0.458. */
  const cop20 = 0.0068 * 400 + 0.0008 * 20 + 0.458;
  const cop25 = 0.0068 * 625 + 0.0008 * 25 + 0.458;
  const heatCounter = (device: string, kwh: number, extra: Partial<CounterReading> = {}): CounterReading => ({
    kind: 'counter',
    component: 'cooling',
    domain: 'cooling',
    device,
    source: 'snmp',
    joules: kwh * 3.6e6,
    heat: {},
    ...extra,
  });
  /** One step of the model then the cooling accounting, as the sampler runs them; share 1. */
  function rig(meters: { cooling: string[]; it: string[]; cop?: Record<string, number> }) {
    const model = new EnergyModel();
    const acc = new CoolingAccounting(cfg, { ...meters, share: 1 });
    return (t: number, readings: Reading[]) => {
      acc.prepare(readings, model);
      const step = model.step(t, readings);
      acc.apply(step.series, 1000, step.dt, model);
      return { series: step.series.filter((s) => s.component === 'cooling'), events: step.events };
    };
  }

  test('a thermal kWh counter: ΔE_thermal / configured COP, labelled snmp-cop, never snmp', () => {
    const tick = rig({ cooling: ['inrow'], it: [], cop: { inrow: 4 } });
    tick(0, [heatCounter('inrow', 100)]);
    const { series } = tick(10_000, [heatCounter('inrow', 100.01)]);
    // 0.01 kWh of heat = 36 000 J thermal; at COP 4 the unit drew 9 000 J (900 W over 10 s).
    expect(series).toEqual([expect.objectContaining({ device: 'inrow', source: 'snmp-cop', joules: expect.closeTo(9000, 6) })]);
    expect(series[0].watts).toBeCloseTo(900, 6);
    expect(series[0]).not.toHaveProperty('heat');
  });

  test('without a configured COP: the curve at the supply air the meter read, else the configured one', () => {
    const tick = rig({ cooling: ['a', 'b'], it: [] });
    tick(0, [heatCounter('a', 1), heatCounter('b', 1, { heat: { supplyAirCelsius: 25 } })]);
    const { series } = tick(1000, [heatCounter('a', 1.001), heatCounter('b', 1.001, { heat: { supplyAirCelsius: 25 } })]);
    const by = new Map(series.map((s) => [s.device, s]));
    expect(by.get('a')?.joules).toBeCloseTo(3600 / cop20, 6);
    expect(by.get('b')?.joules).toBeCloseTo(3600 / cop25, 6);
  });

  test('thermal power is integrated by the trapezoid, then ÷ COP (thermal W / COP = electrical W)', () => {
    const tick = rig({ cooling: ['cdu'], it: [], cop: { cdu: 5 } });
    const heatW = (watts: number): Reading => ({
      kind: 'power',
      component: 'cooling',
      domain: 'cooling',
      device: 'cdu',
      source: 'redfish',
      watts,
      heat: {},
    });
    tick(0, [heatW(10_000)]);
    const { series } = tick(2000, [heatW(20_000)]);
    // ((10 kW + 20 kW) / 2) × 2 s = 30 kJ of heat; / 5 = 6 kJ electrical; the latest sample 20 kW / 5 = 4 kW.
    expect(series[0]).toMatchObject({ source: 'redfish-cop', joules: expect.closeTo(6000, 6), watts: expect.closeTo(4000, 6) });
  });

  test('counter rules hold on the thermal values: a reset drops one interval, an impossible jump is refused', () => {
    const tick = rig({ cooling: ['inrow'], it: [], cop: { inrow: 2 } });
    // maxPowerWatts is the unit's heat-removal capacity: 50 kW thermal.
    const r = (kwh: number) => heatCounter('inrow', kwh, { maxPowerWatts: 50_000 });
    tick(0, [r(10)]);
    expect(tick(1000, [r(10.01)]).series[0].joules).toBeCloseTo(36_000 / 2, 6); // 36 kJ thermal in 1 s: under 50 kW × 2
    // 1 kWh in 1 s is 3.6 MW of heat: impossible, held as a suspect (nothing counted) ...
    const jump = tick(2000, [r(11.01)]);
    expect(jump.series[0].joules).toBe(0);
    // ... and the next read, plausible from the old baseline, shows it was a glitch: nothing lost.
    const back = tick(3000, [r(10.02)]);
    expect(back.series[0].joules).toBeCloseTo(36_000 / 2, 6);
    expect(back.events).toEqual([{ source: 'snmp', device: 'inrow', reason: 'counter_reset' }]);
    // A counter that restarts: two low reads confirm the reset; only the energy since the restart counts.
    tick(4000, [r(0.0)]);
    const reset = tick(5000, [r(0.005)]);
    expect(reset.series[0].joules).toBeCloseTo(18_000 / 2, 6);
    expect(reset.events).toEqual([{ source: 'snmp', device: 'inrow', reason: 'counter_reset' }]);
  });

  test("a meter's thermal and electrical series are apart: switching between them is never one delta", () => {
    const tick = rig({ cooling: ['crac'], it: [], cop: { crac: 3 } });
    const electrical = (kwh: number): Reading => ({ ...heatCounter('crac', kwh), heat: undefined });
    tick(0, [electrical(500)]);
    expect(tick(1000, [electrical(500.001)]).series[0]).toMatchObject({ source: 'snmp', joules: expect.closeTo(3600, 6) });
    // The electrical point went unsupported; the thermal one (a different counter) starts a new baseline.
    expect(tick(2000, [heatCounter('crac', 9000)]).series[0]).toMatchObject({ source: 'snmp-cop', joules: 0 });
    // 0.003 kWh of heat / COP 3 (a 9 000 kWh counter keeps ~1e-6 J of float precision).
    expect(tick(3000, [heatCounter('crac', 9000.003)]).series[0]).toMatchObject({ source: 'snmp-cop', joules: expect.closeTo(3600, 4) });
  });
});
