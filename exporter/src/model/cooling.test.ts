import { coolingFactor, copAt, modelCooling } from './cooling';

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
