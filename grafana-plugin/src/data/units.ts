import { formattedValueToString, getValueFormat } from '@grafana/data';

export const JOULES_PER_KWH = 3.6e6;

/** Energy units of Grafana's unit system that we can convert, in joules per unit. */
const JOULES_PER_UNIT: Record<string, number> = {
  joule: 1,
  watth: 3600,
  kwatth: 3.6e6,
  mwatth: 3.6e9,
  kwattm: 6e4,
};

export function isEnergyUnit(unit: string | undefined): boolean {
  return !!unit && unit in JOULES_PER_UNIT;
}

/** Converts a value in `unit` to joules; unknown units are taken as joules. */
export function toJoules(value: number, unit: string | undefined): number {
  return value * (unit && JOULES_PER_UNIT[unit] ? JOULES_PER_UNIT[unit] : 1);
}

/** Converts joules to `unit`; unknown (non-energy) units get the joule value unchanged. */
export function fromJoules(joules: number, unit: string | undefined): number {
  return joules / (unit && JOULES_PER_UNIT[unit] ? JOULES_PER_UNIT[unit] : 1);
}

export function joulesToKWh(joules: number): number {
  return joules / JOULES_PER_KWH;
}

/** g CO₂ = kWh × intensity (g/kWh). */
export function co2Grams(joules: number, intensityGPerKWh: number): number {
  return joulesToKWh(joules) * intensityGPerKWh;
}

/** cost = kWh × price per kWh. */
export function energyCost(joules: number, pricePerKWh: number): number {
  return joulesToKWh(joules) * pricePerKWh;
}

export function formatWithUnit(value: number, unit: string, decimals?: number | null): string {
  return formattedValueToString(getValueFormat(unit)(value, decimals ?? undefined));
}

/** Formats an energy given in joules in the display unit (any Grafana unit id; energy units are converted). */
export function formatEnergy(joules: number, displayUnit: string, decimals?: number | null): string {
  return formatWithUnit(fromJoules(joules, displayUnit), displayUnit, decimals);
}

export function formatKWh(joules: number): string {
  const kwh = joulesToKWh(joules);
  const digits = kwh === 0 ? 0 : kwh < 0.01 ? 5 : kwh < 1 ? 3 : 2;
  return `${kwh.toFixed(digits)} kWh`;
}

export function formatPercent(part: number, total: number): string {
  if (!(total > 0)) {
    return '–';
  }
  return `${((part / total) * 100).toFixed(1)}%`;
}
