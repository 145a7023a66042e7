import { DataFrame, Field, FieldType } from '@grafana/data';

import { SeriesReducer } from '../types';
import { ComponentKey, KNOWN_COMPONENTS, toComponentKey } from './components';
import { toJoules } from './units';

/** One (group, component) value read from the frames, in joules. `value` may be NaN/negative: checked later. */
export interface Sample {
  group: string;
  component: ComponentKey;
  value: number;
  name?: string;
}

export interface ExtractOptions {
  groupByLabel: string;
  splitLabel: string;
  nameLabel: string;
  inputUnit: string;
  reducer: SeriesReducer;
  /** RefId of a carbon-intensity query; its frames are not energy. */
  carbonRefId?: string;
}

export interface ExtractResult {
  samples: Sample[];
  /** Carbon intensity (g/kWh) found in the frames (query refId or metric name), if any. */
  carbonIntensity?: number;
  /** Series / rows that lacked the grouping label. */
  skipped: number;
}

export const CARBON_METRIC = 'jouleflow_grid_carbon_intensity_grams_per_kwh';

const isNil = (v: unknown): v is null | undefined => v === null || v === undefined;

function toNumber(v: unknown): number | null {
  if (isNil(v)) {
    return null;
  }
  if (typeof v === 'number') {
    return v;
  }
  if (typeof v === 'string') {
    // Prometheus sends "NaN", "+Inf"; keep them as non-finite numbers so they show as invalid.
    const t = v.trim();
    if (t === '') {
      return null;
    }
    if (/^[+-]?inf$/i.test(t)) {
      return t.startsWith('-') ? -Infinity : Infinity;
    }
    return Number(t);
  }
  return NaN;
}

/** Reduces a series to one number; null when there is no value at all. Non-finite values propagate (invalid). */
export function reduceValues(values: ArrayLike<unknown>, reducer: SeriesReducer): number | null {
  if (reducer === 'lastNotNull') {
    for (let i = values.length - 1; i >= 0; i--) {
      const n = toNumber(values[i]);
      if (n !== null) {
        return n;
      }
    }
    return null;
  }
  let acc: number | null = null;
  for (let i = 0; i < values.length; i++) {
    const n = toNumber(values[i]);
    if (n === null) {
      continue;
    }
    if (!Number.isFinite(n)) {
      return n;
    }
    acc = acc === null ? n : reducer === 'sum' ? acc + n : Math.max(acc, n);
  }
  return acc;
}

const isValueField = (f: Field) => f.type === FieldType.number;

function fieldLabel(field: Field, label: string): string | undefined {
  const v = field.labels?.[label];
  return isNil(v) ? undefined : String(v);
}

export function isCarbonFrame(frame: DataFrame, carbonRefId?: string): boolean {
  if (carbonRefId && frame.refId === carbonRefId) {
    return true;
  }
  if (frame.name === CARBON_METRIC) {
    return true;
  }
  return frame.fields.some((f) => f.labels?.__name__ === CARBON_METRIC || f.name === CARBON_METRIC);
}

function findField(frame: DataFrame, name: string): Field | undefined {
  return frame.fields.find((f) => f.name === name);
}

/** Picks the numeric column of a table frame: "Value", "Value #A", … first, else the first number field. */
function tableValueFields(frame: DataFrame, exclude: Array<Field | undefined>): Field[] {
  const numbers = frame.fields.filter((f) => isValueField(f) && !exclude.includes(f));
  const named = numbers.filter((f) => /^Value( #.*)?$/.test(f.name));
  return named.length ? named.slice(0, 1) : numbers.slice(0, 1);
}

function extractTable(frame: DataFrame, groupField: Field, opts: ExtractOptions, out: Sample[]): number {
  const splitField = findField(frame, opts.splitLabel);
  const nameField = findField(frame, opts.nameLabel);
  let skipped = 0;
  // Wide table: one numeric column per component (no split column).
  const componentColumns = splitField
    ? []
    : frame.fields.filter((f) => isValueField(f) && (KNOWN_COMPONENTS as readonly string[]).includes(f.name));
  const valueFields = componentColumns.length
    ? componentColumns
    : tableValueFields(frame, [groupField, splitField, nameField]);
  // A range query in table format has one row per series and time step: the rows of one series (same label
  // columns, the display name aside) are reduced like a series frame, not summed over time. Instant tables
  // have one row per series, so this changes nothing for them.
  const timeField = frame.fields.find((f) => f.type === FieldType.time);
  const labelFields = timeField
    ? frame.fields.filter((f) => f.type !== FieldType.time && f.type !== FieldType.number && f !== nameField)
    : [];
  const series = new Map<string, { group: string; rows: number[] }>();
  for (let i = 0; i < frame.length; i++) {
    const g = groupField.values[i];
    if (isNil(g) || g === '') {
      skipped++;
      continue;
    }
    const key = timeField ? JSON.stringify(labelFields.map((f) => f.values[i] ?? null)) : String(i);
    const s = series.get(key);
    if (s) {
      s.rows.push(i);
    } else {
      series.set(key, { group: String(g), rows: [i] });
    }
  }
  for (const { group, rows } of series.values()) {
    if (timeField) {
      rows.sort((a, b) => Number(timeField.values[a]) - Number(timeField.values[b]));
    }
    const first = rows[0];
    // the newest non-empty display name (a job renamed within the range)
    let name: string | undefined;
    for (const i of rows) {
      const raw = nameField?.values[i];
      name = isNil(raw) || raw === '' ? name : String(raw);
    }
    for (const vf of valueFields) {
      const n = reduceValues(
        rows.map((i) => vf.values[i]),
        opts.reducer
      );
      if (n === null) {
        continue;
      }
      const component = componentColumns.length ? toComponentKey(vf.name) : toComponentKey(splitField?.values[first]);
      out.push({ group, component, value: toJoules(n, opts.inputUnit), name });
    }
  }
  return skipped;
}

function extractSeries(frame: DataFrame, opts: ExtractOptions, out: Sample[]): number {
  let skipped = 0;
  for (const field of frame.fields) {
    if (!isValueField(field)) {
      continue;
    }
    const group = fieldLabel(field, opts.groupByLabel);
    if (group === undefined || group === '') {
      skipped++;
      continue;
    }
    const n = reduceValues(field.values, opts.reducer);
    if (n === null) {
      continue;
    }
    out.push({
      group,
      component: toComponentKey(fieldLabel(field, opts.splitLabel)),
      value: toJoules(n, opts.inputUnit),
      name: fieldLabel(field, opts.nameLabel) || undefined,
    });
  }
  return skipped;
}

function carbonValue(frame: DataFrame): number | undefined {
  for (const f of frame.fields) {
    if (!isValueField(f)) {
      continue;
    }
    const n = reduceValues(f.values, 'lastNotNull');
    if (n !== null && Number.isFinite(n) && n >= 0) {
      return n;
    }
  }
  return undefined;
}

/**
 * Reads Prometheus results in either shape: one frame per series (range or instant; labels on the value field)
 * or one table frame (format=table; a column per label and a "Value" column).
 */
export function extractSamples(frames: DataFrame[] | undefined, opts: ExtractOptions): ExtractResult {
  const samples: Sample[] = [];
  let skipped = 0;
  let carbonIntensity: number | undefined;
  for (const frame of frames ?? []) {
    if (!frame || !frame.fields?.length) {
      continue;
    }
    if (isCarbonFrame(frame, opts.carbonRefId)) {
      carbonIntensity ??= carbonValue(frame);
      continue;
    }
    const groupField = findField(frame, opts.groupByLabel);
    if (groupField && groupField.type !== FieldType.time) {
      skipped += extractTable(frame, groupField, opts, samples);
    } else {
      skipped += extractSeries(frame, opts, samples);
    }
  }
  return { samples, carbonIntensity, skipped };
}
