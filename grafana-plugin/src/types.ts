/** How the per-job split is drawn; `efficiency` draws joules per unit of work, one axis per unit. */
export type ViewMode = 'bars' | 'donut' | 'table' | 'efficiency';
/** Donut view: one donut for everything shown, or one small donut per job. */
export type DonutMode = 'selection' | 'perJob';
export type SortBy = 'total' | 'name' | 'none';
/** How a time series (range query) is reduced to one number per series. */
export type SeriesReducer = 'lastNotNull' | 'max' | 'sum';
export type Co2Source = 'none' | 'fixed' | 'query';

export interface EnergySplitOptions {
  view: ViewMode;
  donutMode: DonutMode;
  /** Label whose values become rows (default job_id). */
  groupByLabel: string;
  /** Label whose values split a row (default component). */
  splitLabel: string;
  /** Label that carries a display name (default job_name, from the jouleflow_job_info join). */
  nameLabel: string;
  /** Unit of the query values (jouleflow exposes joules). */
  inputUnit: string;
  reducer: SeriesReducer;
  sortBy: SortBy;
  sortDesc: boolean;
  /** Rows shown before the rest is folded into an "others" row; 0 = all (capped at MAX_ROWS). */
  topN: number;
  showLegend: boolean;
  co2Source: Co2Source;
  /** g CO₂ per kWh, used when co2Source = fixed. */
  carbonIntensity: number;
  /** RefId of the query returning the carbon intensity (g/kWh), used when co2Source = query. */
  carbonRefId: string;
  /** Price per kWh; 0 hides the cost column. */
  pricePerKWh: number;
  /** Grafana unit id used to format cost (e.g. currencyEUR). */
  currencyUnit: string;
  /** Label carrying the unit of work (tokens, samples, steps) on J-per-unit and work series. */
  unitLabel: string;
  /** RefId of the work query (jouleflow_job_work_total) that adds J-per-unit columns to the table; also recognised by metric name. */
  workRefId: string;
  /** Data link template for a job row; ${job_id} and ${job_name} are replaced (URL-encoded), then dashboard variables. */
  jobLinkUrl: string;
}

export const DEFAULT_OPTIONS: EnergySplitOptions = {
  view: 'bars',
  donutMode: 'selection',
  groupByLabel: 'job_id',
  splitLabel: 'component',
  nameLabel: 'job_name',
  inputUnit: 'joule',
  reducer: 'lastNotNull',
  sortBy: 'total',
  sortDesc: true,
  topN: 20,
  showLegend: true,
  co2Source: 'none',
  carbonIntensity: 300,
  carbonRefId: 'B',
  pricePerKWh: 0,
  currencyUnit: 'currencyEUR',
  jobLinkUrl: '',
  unitLabel: 'unit',
  workRefId: 'W',
};

/** Default display unit (field config unit). */
export const DEFAULT_UNIT = 'joule';
