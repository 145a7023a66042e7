import { DataFrame, Field, FieldType } from '@grafana/data';

import { EnergySplitOptions } from '../types';
import { extractSamples, isCarbonFrame, reduceValues } from './extract';
import { buildRows, JobRow, MAX_ROWS } from './rows';
import { joulesToKWh } from './units';

/**
 * Energy per unit of work (issue 15). The efficiency view reads joules per unit per job and
 * component — jouleflow's `job_id_unit_component:jouleflow_energy_per_unit_joules:*` recording
 * rules, labelled job_id, unit and component — and draws one group per unit, each with its own
 * axis: a joule per token and a joule per step are never compared on one scale. The table view
 * divides each job's energy by its work (`jouleflow_job_work_total`, a second query).
 */

export const WORK_METRIC = 'jouleflow_job_work_total';

export interface UnitGroup {
  unit: string;
  /** One row per job: values and total in joules per unit. */
  rows: JobRow[];
  /** Largest total in this group: the group's own axis. */
  maxTotal: number;
  /** Jobs beyond top N, not drawn (a sum of ratios would mean nothing, so there is no "others" row). */
  hiddenJobs: number;
}

export interface EfficiencyModel {
  groups: UnitGroup[];
  /** Series / rows without a unit label (or without the row label). */
  skippedSeries: number;
}

function valueFields(frame: DataFrame): Field[] {
  return frame.fields.filter((f) => f.type === FieldType.number);
}

function findField(frame: DataFrame, name: string): Field | undefined {
  return frame.fields.find((f) => f.name === name && f.type !== FieldType.number);
}

/** A copy of a table frame with only the given rows. */
function pickRows(frame: DataFrame, rows: number[]): DataFrame {
  return {
    ...frame,
    length: rows.length,
    fields: frame.fields.map((f) => ({ ...f, values: rows.map((i) => f.values[i]) })),
  };
}

/** Splits frames into one list per unit: series frames by their value field's label, table frames by rows. */
export function splitByUnit(
  frames: DataFrame[] | undefined,
  unitLabel: string
): { byUnit: Map<string, DataFrame[]>; skipped: number } {
  const byUnit = new Map<string, DataFrame[]>();
  let skipped = 0;
  const add = (unit: string, f: DataFrame) => byUnit.set(unit, [...(byUnit.get(unit) ?? []), f]);
  for (const frame of frames ?? []) {
    if (!frame?.fields?.length) {
      continue;
    }
    const unitField = findField(frame, unitLabel);
    if (unitField) {
      const rows = new Map<string, number[]>();
      for (let i = 0; i < frame.length; i++) {
        const u = unitField.values[i];
        if (u === null || u === undefined || u === '') {
          skipped++;
          continue;
        }
        rows.set(String(u), [...(rows.get(String(u)) ?? []), i]);
      }
      rows.forEach((idx, unit) => add(unit, pickRows(frame, idx)));
      continue;
    }
    const others = frame.fields.filter((f) => f.type !== FieldType.number);
    for (const field of valueFields(frame)) {
      const unit = field.labels?.[unitLabel];
      if (!unit) {
        skipped++;
        continue;
      }
      add(unit, { ...frame, fields: [...others, field] });
    }
  }
  return { byUnit, skipped };
}

/** Frames of J per unit → one group of job rows per unit, units in name order. */
export function buildEfficiencyModel(frames: DataFrame[] | undefined, options: EnergySplitOptions): EfficiencyModel {
  const { byUnit, skipped } = splitByUnit(
    frames?.filter(
      (f) =>
        !isWorkFrame(f, options.workRefId) &&
        !isCarbonFrame(f, options.co2Source === 'query' ? options.carbonRefId : undefined)
    ),
    options.unitLabel || 'unit'
  );
  let skippedSeries = skipped;
  const groups: UnitGroup[] = [];
  for (const unit of [...byUnit.keys()].sort()) {
    const extracted = extractSamples(byUnit.get(unit), {
      groupByLabel: options.groupByLabel || 'job_id',
      splitLabel: options.splitLabel || 'component',
      nameLabel: options.nameLabel || 'job_name',
      inputUnit: options.inputUnit || 'joule',
      reducer: options.reducer || 'lastNotNull',
    });
    skippedSeries += extracted.skipped;
    const all = buildRows(extracted.samples, {
      sortBy: options.sortBy ?? 'total',
      sortDesc: options.sortDesc ?? true,
      topN: 0,
      maxRows: MAX_ROWS,
    }).rows.filter((r) => r.kind === 'job');
    const limit = options.topN > 0 ? Math.floor(options.topN) : MAX_ROWS;
    const rows = all.slice(0, limit);
    const maxTotal = rows.reduce((m, r) => Math.max(m, r.total), 0);
    groups.push({ unit, rows, maxTotal, hiddenJobs: all.length - rows.length });
  }
  return { groups, skippedSeries };
}

// ---------------------------------------------------------------------------------------------
// Work totals for the table view

export interface WorkTotals {
  /** Units found, in name order: one set of columns each. */
  units: string[];
  /** job → unit → total work. */
  byJob: Map<string, Record<string, number>>;
}

/** The work query: by refId, or recognised by its metric name. */
export function isWorkFrame(frame: DataFrame, workRefId?: string): boolean {
  if (workRefId && frame.refId === workRefId) {
    return true;
  }
  return frame.name === WORK_METRIC || frame.fields.some((f) => f.labels?.__name__ === WORK_METRIC);
}

/** Reads `jouleflow_job_work_total{job_id, unit}` (series or table frames); the last value per series. */
export function extractWork(
  frames: DataFrame[] | undefined,
  groupByLabel: string,
  unitLabel: string,
  workRefId?: string
): WorkTotals {
  const byJob = new Map<string, Record<string, number>>();
  const units = new Set<string>();
  const put = (job: unknown, unit: unknown, v: number | null) => {
    if (!job || !unit || v === null || !Number.isFinite(v) || v < 0) {
      return;
    }
    const rec = byJob.get(String(job)) ?? {};
    // Several nodes may publish the same global count: keep the largest, never the sum.
    rec[String(unit)] = Math.max(rec[String(unit)] ?? 0, v);
    byJob.set(String(job), rec);
    units.add(String(unit));
  };
  for (const frame of frames ?? []) {
    if (!frame?.fields?.length || !isWorkFrame(frame, workRefId)) {
      continue;
    }
    const jobField = findField(frame, groupByLabel);
    const unitField = findField(frame, unitLabel);
    if (jobField && unitField) {
      const [value] = valueFields(frame).filter((f) => /^Value/.test(f.name));
      for (let i = 0; i < frame.length; i++) {
        put(jobField.values[i], unitField.values[i], reduceValues([value?.values[i]], 'lastNotNull'));
      }
      continue;
    }
    for (const f of valueFields(frame)) {
      put(f.labels?.[groupByLabel], f.labels?.[unitLabel], reduceValues(f.values, 'lastNotNull'));
    }
  }
  return { units: [...units].sort(), byJob };
}

/** Joules per unit for a table row; undefined for rows without work of that unit (and the "others" row). */
export function rowJoulesPerUnit(row: JobRow, unit: string, work: WorkTotals): number | undefined {
  if (row.kind === 'others') {
    return undefined;
  }
  const w = work.byJob.get(row.id)?.[unit];
  return w !== undefined && w > 0 ? row.total / w : undefined;
}

// ---------------------------------------------------------------------------------------------
// Per million units

export interface PerMillionUnits {
  kwh: number;
  gramsCo2?: number;
  cost?: number;
}

/** J/unit × 10⁶ / 3.6·10⁶ J/kWh = kWh per million units; × g/kWh; × price/kWh. */
export function perMillionUnits(
  joulesPerUnit: number,
  carbonIntensity?: number,
  pricePerKWh?: number
): PerMillionUnits {
  const kwh = joulesToKWh(joulesPerUnit * 1e6);
  return {
    kwh,
    gramsCo2: carbonIntensity === undefined ? undefined : kwh * carbonIntensity,
    cost: pricePerKWh === undefined ? undefined : kwh * pricePerKWh,
  };
}

/** "tokens" → "token" for "J/token" headings; units are [a-z][a-z0-9_]*. */
export function singularUnit(unit: string): string {
  return unit.length > 1 && unit.endsWith('s') && !unit.endsWith('ss') ? unit.slice(0, -1) : unit;
}
