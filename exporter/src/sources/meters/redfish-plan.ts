import type { PointValue } from './common';
import { parseUnitText } from './common';

/**
 * What a Redfish document says about power and energy, as pure rules (no I/O): the JSON helpers,
 * where a reading is found (Locator), and the places discovery tries (Plan). redfish.ts fetches
 * the documents and applies these rules in its order of preference.
 */

export type Json = Record<string, unknown>;

export interface Locator {
  path: string;
  kind: 'power' | 'energy' | 'thermal_power';
  /** Extracts the raw number (null: the service says it has no value now). */
  extract: (doc: Json) => number | null | undefined;
  unit: PointValue['unit'];
  label: string;
}

export interface Plan {
  energy: Locator[];
  power: Locator[];
  /** Heat removed (Sensors of ReadingType Heat, CDUs): used through the COP when nothing electrical is there. */
  thermal?: Locator[];
  from: string;
}

export const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
export const link = (doc: Json, key: string): string | undefined => {
  const v = doc[key];
  return isObj(v) && typeof v['@odata.id'] === 'string' ? v['@odata.id'] : undefined;
};
export const members = (doc: Json): string[] =>
  Array.isArray(doc.Members)
    ? doc.Members.filter(isObj)
        .map((m) => m['@odata.id'])
        .filter((x): x is string => typeof x === 'string')
    : [];
export const num = (v: unknown): number | null | undefined => (typeof v === 'number' ? v : v === null ? null : undefined);
/** `{ "Reading": n }` excerpt property (PowerWatts, EnergykWh, InputPowerWatts). */
export const excerpt =
  (prop: string) =>
  (doc: Json): number | null | undefined => {
    const v = doc[prop];
    return isObj(v) ? num(v.Reading) : undefined;
  };

/** Power/energy excerpts of a metrics-like document (EnvironmentMetrics, PowerDistributionMetrics). */
export function metricsLocators(path: string, doc: Json, powerProp = 'PowerWatts'): Plan {
  const plan: Plan = { energy: [], power: [], from: path };
  if (excerpt('EnergykWh')(doc) !== undefined)
    plan.energy.push({ path, kind: 'energy', extract: excerpt('EnergykWh'), unit: 'kWh', label: `${path} EnergykWh` });
  if (excerpt(powerProp)(doc) !== undefined)
    plan.power.push({ path, kind: 'power', extract: excerpt(powerProp), unit: 'W', label: `${path} ${powerProp}` });
  return plan;
}

/** The chassis total sensor when there is one (PhysicalContext Chassis, else a non-PSU ElectricalContext Total), else the PSU sensors summed, else the first. */
export function pickSensors(docs: Array<{ path: string; doc: Json }>, kind: Locator['kind']): Locator[] {
  const types = { power: ['Power'], energy: ['EnergykWh', 'EnergyWh'], thermal_power: ['Heat'] }[kind];
  const mine = docs.filter((d) => types.includes(String(d.doc.ReadingType)));
  if (mine.length === 0) return [];
  // PSU sensors also say ElectricalContext "Total" (the PSU's total): the chassis context wins.
  const total =
    mine.find((d) => d.doc.PhysicalContext === 'Chassis') ??
    mine.find((d) => d.doc.ElectricalContext === 'Total' && d.doc.PhysicalContext !== 'PowerSupply');
  const psus = mine.filter((d) => d.doc.PhysicalContext === 'PowerSupply');
  const chosen = total ? [total] : psus.length && kind !== 'thermal_power' ? psus : [mine[0]];
  return chosen.map(({ path, doc }) => {
    const lifetime = kind === 'energy' && typeof doc.LifetimeReading === 'number';
    const field = lifetime ? 'LifetimeReading' : 'Reading';
    const unit =
      parseUnitText(typeof doc.ReadingUnits === 'string' ? doc.ReadingUnits : '') ??
      (kind === 'energy' ? (doc.ReadingType === 'EnergyWh' ? 'Wh' : 'kWh') : kind === 'thermal_power' ? 'kW' : 'W');
    return { path, kind, extract: (d: Json) => num(d[field]), unit, label: `${path} ${field}` };
  });
}
