import { DataFrame } from '@grafana/data';

import { EnergySplitOptions } from '../types';
import { extractWork, isWorkFrame, WorkTotals } from './efficiency';
import { extractSamples } from './extract';
import { buildRows, MAX_ROWS, RowsResult } from './rows';
import { co2Grams, energyCost } from './units';

export interface PanelModel extends RowsResult {
  /** Largest job total (the "others" row excluded): bar widths are value / maxTotal, others is clipped at 100 %. */
  maxTotal: number;
  /** g/kWh used for the CO₂ column, or undefined when the column is off / no intensity is known. */
  carbonIntensity?: number;
  /** Price per kWh for the cost column, or undefined when off. */
  pricePerKWh?: number;
  skippedSeries: number;
  /** Work per job and unit from the work query (empty without one): J-per-unit columns. */
  work: WorkTotals;
}

/** Frames + options → everything the views draw. Pure: the panel only memoises it. */
export function buildModel(frames: DataFrame[] | undefined, options: EnergySplitOptions): PanelModel {
  const energyFrames = frames?.filter((f) => !isWorkFrame(f, options.workRefId));
  const extracted = extractSamples(energyFrames, {
    groupByLabel: options.groupByLabel || 'job_id',
    splitLabel: options.splitLabel || 'component',
    nameLabel: options.nameLabel || 'job_name',
    inputUnit: options.inputUnit || 'joule',
    reducer: options.reducer || 'lastNotNull',
    carbonRefId: options.co2Source === 'query' ? options.carbonRefId : undefined,
  });
  const rows = buildRows(extracted.samples, {
    sortBy: options.sortBy ?? 'total',
    sortDesc: options.sortDesc ?? true,
    topN: options.topN ?? 0,
    maxRows: MAX_ROWS,
  });
  // Bars are scaled to the largest job; the folded "others" row (often larger than any job) is clipped instead.
  const maxJob = rows.rows.reduce((m, r) => (r.kind === 'others' ? m : Math.max(m, r.total)), 0);
  const maxTotal = maxJob > 0 ? maxJob : rows.rows.reduce((m, r) => Math.max(m, r.total), 0);
  let carbonIntensity: number | undefined;
  if (options.co2Source === 'fixed' && options.carbonIntensity >= 0 && Number.isFinite(options.carbonIntensity)) {
    carbonIntensity = options.carbonIntensity;
  } else if (options.co2Source === 'query') {
    carbonIntensity = extracted.carbonIntensity;
  }
  const pricePerKWh = options.pricePerKWh > 0 && Number.isFinite(options.pricePerKWh) ? options.pricePerKWh : undefined;
  const work = extractWork(frames, options.groupByLabel || 'job_id', options.unitLabel || 'unit', options.workRefId);
  return { ...rows, maxTotal, carbonIntensity, pricePerKWh, skippedSeries: extracted.skipped, work };
}

export function rowCo2Grams(total: number, model: PanelModel): number | undefined {
  return model.carbonIntensity === undefined ? undefined : co2Grams(total, model.carbonIntensity);
}

export function rowCost(total: number, model: PanelModel): number | undefined {
  return model.pricePerKWh === undefined ? undefined : energyCost(total, model.pricePerKWh);
}
