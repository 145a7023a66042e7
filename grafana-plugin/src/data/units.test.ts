import {
  co2Grams,
  energyCost,
  formatEnergy,
  formatKWh,
  formatPercent,
  fromJoules,
  isEnergyUnit,
  joulesToKWh,
  toJoules,
} from './units';

describe('units', () => {
  it('converts between joules and energy units', () => {
    expect(joulesToKWh(3.6e6)).toBe(1);
    expect(toJoules(1, 'kwatth')).toBe(3.6e6);
    expect(toJoules(1, 'watth')).toBe(3600);
    expect(fromJoules(7.2e6, 'kwatth')).toBe(2);
    expect(toJoules(5, 'unknown')).toBe(5);
    expect(isEnergyUnit('joule')).toBe(true);
    expect(isEnergyUnit('percent')).toBe(false);
  });

  it('formats through Grafana units', () => {
    expect(formatEnergy(5000, 'joule')).toBe('5 kJ');
    expect(formatEnergy(12e6, 'joule')).toBe('12 MJ');
    expect(formatEnergy(7.2e6, 'kwatth')).toBe('2 kWh');
    expect(formatEnergy(1.5e6, 'joule', 2)).toBe('1.50 MJ');
  });

  it('formats kWh and percentages', () => {
    expect(formatKWh(3.6e6)).toBe('1.00 kWh');
    expect(formatKWh(0)).toBe('0 kWh');
    expect(formatKWh(3600)).toBe('0.00100 kWh');
    expect(formatPercent(1, 4)).toBe('25.0%');
    expect(formatPercent(1, 0)).toBe('–');
  });

  it('computes CO₂ and cost from kWh', () => {
    expect(co2Grams(3.6e6, 400)).toBe(400);
    expect(energyCost(7.2e6, 0.25)).toBe(0.5);
  });
});
