import { formatEnergy, formatKWh, formatPercent, formatWithUnit } from './units';

export interface Formatters {
  /** Energy in the display unit (Grafana unit id; energy units are converted from joules). */
  energy: (joules: number) => string;
  /** Always joules (SI-scaled), for tooltips. */
  joules: (joules: number) => string;
  kwh: (joules: number) => string;
  percent: (part: number, total: number) => string;
  co2: (grams: number) => string;
  cost: (amount: number) => string;
}

export function makeFormatters(
  displayUnit: string,
  decimals: number | null | undefined,
  currencyUnit: string
): Formatters {
  return {
    energy: (j) => formatEnergy(j, displayUnit, decimals),
    joules: (j) => formatEnergy(j, 'joule', decimals),
    kwh: formatKWh,
    percent: formatPercent,
    co2: (g) => formatWithUnit(g, 'massg', decimals),
    cost: (c) => formatWithUnit(c, currencyUnit || 'currencyEUR', decimals ?? 2),
  };
}
