import { SortBy } from '../types';
import { COMPONENT_KEYS, ComponentKey, emptyValues } from './components';
import { Sample } from './extract';

export type RowKind = 'job' | 'unattributed' | 'others';

export interface JobRow {
  /** Stable key (the group label value, or "__others__"). */
  key: string;
  /** Group label value (job_id). */
  id: string;
  /** Display name: job_name when present, else the id. */
  name: string;
  kind: RowKind;
  /** Valid joules per component; missing components are 0. */
  values: Record<ComponentKey, number>;
  /** Sum of valid values. */
  total: number;
  /** Components whose value was NaN, infinite or negative: shown as invalid, not drawn, not summed. */
  invalid: ComponentKey[];
  /** Number of jobs in this row (> 1 only for the "others" row). */
  jobCount: number;
}

export interface RowsOptions {
  sortBy: SortBy;
  sortDesc: boolean;
  /** Rows before folding the rest into "others"; 0 = no folding (still capped at maxRows). */
  topN: number;
  maxRows: number;
}

export interface RowsResult {
  rows: JobRow[];
  /** Distinct jobs in the data. */
  jobCount: number;
  /** Jobs folded into the "others" row. */
  foldedJobs: number;
  /** Valid joules per component over all jobs. */
  componentTotals: Record<ComponentKey, number>;
  grandTotal: number;
  /** Components with a non-zero total or an invalid value, in canonical order. */
  components: ComponentKey[];
  invalidJobs: number;
}

export const UNATTRIBUTED_ID = 'unattributed';
export const OTHERS_KEY = '__others__';
/** Hard cap on rendered rows, whatever top N says: hundreds of jobs must not freeze the browser. */
export const MAX_ROWS = 200;

export function isValidEnergy(v: number): boolean {
  return Number.isFinite(v) && v >= 0;
}

function newRow(id: string, name: string, kind: RowKind): JobRow {
  return {
    key: kind === 'others' ? OTHERS_KEY : id,
    id,
    name,
    kind,
    values: emptyValues(),
    total: 0,
    invalid: [],
    jobCount: 1,
  };
}

/** Groups samples into one row per job; sums duplicates; invalid values are flagged, not summed. */
export function groupSamples(samples: Sample[]): JobRow[] {
  const byId = new Map<string, JobRow>();
  for (const s of samples) {
    let row = byId.get(s.group);
    if (!row) {
      row = newRow(s.group, s.group, s.group === UNATTRIBUTED_ID ? 'unattributed' : 'job');
      byId.set(s.group, row);
    }
    if (s.name && row.name === row.id) {
      row.name = s.name;
    }
    if (isValidEnergy(s.value)) {
      row.values[s.component] += s.value;
      row.total += s.value;
    } else if (!row.invalid.includes(s.component)) {
      row.invalid.push(s.component);
    }
  }
  return Array.from(byId.values());
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

export function sortRows(rows: JobRow[], sortBy: SortBy, desc: boolean): JobRow[] {
  if (sortBy === 'none') {
    return rows;
  }
  const dir = desc ? -1 : 1;
  return [...rows].sort((a, b) => {
    const c = sortBy === 'total' ? a.total - b.total : collator.compare(a.name, b.name);
    return c !== 0 ? c * dir : collator.compare(a.id, b.id);
  });
}

function foldOthers(rows: JobRow[]): JobRow {
  const others = newRow(OTHERS_KEY, `Others (${rows.length} jobs)`, 'others');
  others.jobCount = rows.length;
  for (const r of rows) {
    for (const k of COMPONENT_KEYS) {
      others.values[k] += r.values[k];
    }
    others.total += r.total;
    for (const k of r.invalid) {
      if (!others.invalid.includes(k)) {
        others.invalid.push(k);
      }
    }
  }
  return others;
}

/** Samples → sorted per-job rows, top N plus an "others" row. The unattributed row is never folded away. */
export function buildRows(samples: Sample[], opts: RowsOptions): RowsResult {
  const all = sortRows(groupSamples(samples), opts.sortBy, opts.sortDesc);
  const componentTotals = emptyValues();
  let grandTotal = 0;
  let invalidJobs = 0;
  const invalidComponents = new Set<ComponentKey>();
  for (const r of all) {
    for (const k of COMPONENT_KEYS) {
      componentTotals[k] += r.values[k];
    }
    grandTotal += r.total;
    if (r.invalid.length) {
      invalidJobs++;
      r.invalid.forEach((k) => invalidComponents.add(k));
    }
  }

  const limit = Math.max(1, Math.min(opts.topN > 0 ? Math.floor(opts.topN) : opts.maxRows, opts.maxRows));
  let rows = all;
  let foldedJobs = 0;
  if (all.length > limit) {
    const kept = all.slice(0, limit);
    const rest = all.slice(limit);
    const unattributed = rest.filter((r) => r.kind === 'unattributed');
    const folded = rest.filter((r) => r.kind !== 'unattributed');
    foldedJobs = folded.length;
    rows = [...kept, ...unattributed];
    if (folded.length) {
      rows.push(foldOthers(folded));
    }
  }
  const components = COMPONENT_KEYS.filter((k) => componentTotals[k] > 0 || invalidComponents.has(k));
  return { rows, jobCount: all.length, foldedJobs, componentTotals, grandTotal, components, invalidJobs };
}
