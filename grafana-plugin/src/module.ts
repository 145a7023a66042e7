import { FieldColorModeId, FieldConfigProperty, PanelPlugin } from '@grafana/data';

import { EnergySplitPanel } from './components/EnergySplitPanel';
import { DEFAULT_OPTIONS as D, DEFAULT_UNIT, EnergySplitOptions } from './types';

export const plugin = new PanelPlugin<EnergySplitOptions>(EnergySplitPanel)
  .useFieldConfig({
    standardOptions: {
      [FieldConfigProperty.Unit]: { defaultValue: DEFAULT_UNIT },
      [FieldConfigProperty.Color]: {
        settings: { byValueSupport: false, bySeriesSupport: false, preferThresholdsMode: false },
        defaultValue: { mode: FieldColorModeId.PaletteClassic },
      },
    },
    disableStandardOptions: [
      FieldConfigProperty.Min,
      FieldConfigProperty.Max,
      FieldConfigProperty.Thresholds,
      FieldConfigProperty.Mappings,
      FieldConfigProperty.NoValue,
      FieldConfigProperty.Links,
      FieldConfigProperty.Actions,
    ],
  })
  .setPanelOptions((builder) => {
    const data = ['Data'];
    const display = ['Display'];
    const extras = ['CO₂ and cost'];
    return builder
      .addRadio({
        path: 'view',
        name: 'View',
        category: display,
        defaultValue: D.view,
        settings: {
          options: [
            { value: 'bars', label: 'Stacked bars' },
            { value: 'donut', label: 'Donut' },
            { value: 'table', label: 'Table' },
            { value: 'efficiency', label: 'Per unit of work' },
          ],
        },
      })
      .addRadio({
        path: 'donutMode',
        name: 'Donut',
        category: display,
        defaultValue: D.donutMode,
        settings: {
          options: [
            { value: 'selection', label: 'Whole selection' },
            { value: 'perJob', label: 'One per job' },
          ],
        },
        showIf: (o) => o.view === 'donut',
      })
      .addRadio({
        path: 'sortBy',
        name: 'Sort by',
        category: display,
        defaultValue: D.sortBy,
        settings: {
          options: [
            { value: 'total', label: 'Total' },
            { value: 'name', label: 'Name' },
            { value: 'none', label: 'Query order' },
          ],
        },
      })
      .addBooleanSwitch({
        path: 'sortDesc',
        name: 'Descending',
        category: display,
        defaultValue: D.sortDesc,
        showIf: (o) => o.sortBy !== 'none',
      })
      .addNumberInput({
        path: 'topN',
        name: 'Top N jobs',
        description: 'Jobs shown before the rest is folded into an "others" row; 0 shows all (capped at 200 rows)',
        category: display,
        defaultValue: D.topN,
        settings: { min: 0, integer: true },
      })
      .addBooleanSwitch({ path: 'showLegend', name: 'Legend', category: display, defaultValue: D.showLegend })
      .addTextInput({
        path: 'jobLinkUrl',
        name: 'Job dashboard URL',
        description: 'Data link on each job; ${job_id} and ${job_name} are replaced, then dashboard variables',
        category: display,
        defaultValue: D.jobLinkUrl,
        settings: { placeholder: '/d/jouleflow-job/job?var-job_id=${job_id}' },
      })
      .addTextInput({
        path: 'groupByLabel',
        name: 'Row label',
        description: 'Label whose values become rows',
        category: data,
        defaultValue: D.groupByLabel,
      })
      .addTextInput({
        path: 'splitLabel',
        name: 'Split label',
        description: 'Label with compute / transmit / store / cooling; other values are shown as "other"',
        category: data,
        defaultValue: D.splitLabel,
      })
      .addTextInput({
        path: 'nameLabel',
        name: 'Name label',
        description: 'Label with a display name (jouleflow_job_info join)',
        category: data,
        defaultValue: D.nameLabel,
      })
      .addTextInput({
        path: 'unitLabel',
        name: 'Work unit label',
        description: 'Label with the unit of work (tokens, samples, steps) on J-per-unit and work series',
        category: data,
        defaultValue: D.unitLabel,
      })
      .addTextInput({
        path: 'workRefId',
        name: 'Work query (refId)',
        description:
          'Query returning jouleflow_job_work_total: adds J-per-unit columns to the table (also found by metric name)',
        category: data,
        defaultValue: D.workRefId,
      })
      .addSelect({
        path: 'inputUnit',
        name: 'Query unit',
        description: 'Unit of the query values (jouleflow exports joules). Display unit: Standard options → Unit',
        category: data,
        defaultValue: D.inputUnit,
        settings: {
          options: [
            { value: 'joule', label: 'Joule (J)' },
            { value: 'watth', label: 'Watt-hour (Wh)' },
            { value: 'kwatth', label: 'Kilowatt-hour (kWh)' },
          ],
        },
      })
      .addRadio({
        path: 'reducer',
        name: 'Series reducer',
        description: 'How a range query series becomes one value',
        category: data,
        defaultValue: D.reducer,
        settings: {
          options: [
            { value: 'lastNotNull', label: 'Last' },
            { value: 'max', label: 'Max' },
            { value: 'sum', label: 'Sum' },
          ],
        },
      })
      .addRadio({
        path: 'co2Source',
        name: 'CO₂ column',
        category: extras,
        defaultValue: D.co2Source,
        settings: {
          options: [
            { value: 'none', label: 'Off' },
            { value: 'fixed', label: 'Fixed intensity' },
            { value: 'query', label: 'From query' },
          ],
        },
      })
      .addNumberInput({
        path: 'carbonIntensity',
        name: 'Carbon intensity (g CO₂/kWh)',
        category: extras,
        defaultValue: D.carbonIntensity,
        settings: { min: 0 },
        showIf: (o) => o.co2Source === 'fixed',
      })
      .addTextInput({
        path: 'carbonRefId',
        name: 'Carbon intensity query (refId)',
        description: 'Query returning g/kWh, e.g. jouleflow_grid_carbon_intensity_grams_per_kwh',
        category: extras,
        defaultValue: D.carbonRefId,
        showIf: (o) => o.co2Source === 'query',
      })
      .addNumberInput({
        path: 'pricePerKWh',
        name: 'Price per kWh',
        description: '0 hides the cost column',
        category: extras,
        defaultValue: D.pricePerKWh,
        settings: { min: 0 },
      })
      .addTextInput({
        path: 'currencyUnit',
        name: 'Currency unit',
        description: 'Grafana unit id, e.g. currencyEUR, currencyUSD',
        category: extras,
        defaultValue: D.currencyUnit,
        showIf: (o) => o.pricePerKWh > 0,
      });
  });
