/**
 * Every data-testid used by the panel, in one place. Shared by the jest tests and the real-browser test
 * (test/browser/panel.browser.test.ts), so keep this file free of imports.
 */
export const TestIds = {
  panel: 'jf-energysplit-panel',
  empty: 'jf-empty',
  warning: 'jf-warning',
  legend: 'jf-legend',
  legendItem: 'jf-legend-item',
  tooltip: 'jf-tooltip',
  barsView: 'jf-bars',
  row: 'jf-row',
  rowLabel: 'jf-row-label',
  rowLink: 'jf-row-link',
  rowTrack: 'jf-row-track',
  rowTotal: 'jf-row-total',
  rowCo2: 'jf-row-co2',
  rowCost: 'jf-row-cost',
  segment: 'jf-segment',
  invalid: 'jf-invalid',
  donutView: 'jf-donut',
  donutChart: 'jf-donut-chart',
  donutArc: 'jf-donut-arc',
  donutTotal: 'jf-donut-total',
  tableView: 'jf-table',
  tableRow: 'jf-table-row',
  tableCell: 'jf-table-cell',
} as const;
