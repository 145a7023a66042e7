import { FieldColorModeId, FieldConfigSource, getDefaultTimeRange, LoadingState, PanelProps } from '@grafana/data';
import { fireEvent, render, screen, within } from '@testing-library/react';
import React from 'react';

import {
  BASIC_JOBS,
  CARBON_INTENSITY,
  EFFICIENCY_JOBS,
  expectedTotal,
  fixtureOptions,
  INVALID_JOBS,
  PANEL_FIXTURES,
  PRICE_PER_KWH,
  seriesFrames,
} from '../fixtures';
import { MAX_ROWS } from '../data/rows';
import { TestIds } from '../testIds';
import { EnergySplitOptions } from '../types';
import { EnergySplitPanel } from './EnergySplitPanel';

function renderPanel(
  fixture: string,
  extra: Partial<EnergySplitOptions> = {},
  fieldConfig: FieldConfigSource = { defaults: {}, overrides: [] },
  frames = PANEL_FIXTURES[fixture].frames()
) {
  const props = {
    id: 1,
    data: { series: frames, state: LoadingState.Done, timeRange: getDefaultTimeRange() },
    timeRange: getDefaultTimeRange(),
    timeZone: 'utc',
    options: fixtureOptions(fixture, extra),
    fieldConfig,
    width: 800,
    height: 400,
    transparent: false,
    title: 'Energy split',
    renderCounter: 0,
    replaceVariables: (s: string) => s,
    onOptionsChange: jest.fn(),
    onFieldConfigChange: jest.fn(),
    onChangeTimeRange: jest.fn(),
    eventBus: {} as PanelProps['eventBus'],
  } as unknown as PanelProps<EnergySplitOptions>;
  return render(<EnergySplitPanel {...props} />);
}

const rows = () => screen.getAllByTestId(TestIds.row);
const rowOf = (jobId: string) => rows().find((r) => r.getAttribute('data-job') === jobId)!;
const segments = (row: HTMLElement) => within(row).queryAllByTestId(TestIds.segment);
const widthOf = (el: HTMLElement) => parseFloat(el.style.width);

describe('EnergySplitPanel – bars (default view)', () => {
  it('draws one stacked bar per job, sorted by total, with names and totals', () => {
    renderPanel('basic');
    expect(screen.getByTestId(TestIds.barsView)).toBeInTheDocument();
    expect(rows().map((r) => r.getAttribute('data-job'))).toEqual(['j-101', 'j-102', 'j-103', 'j-104', 'unattributed']);
    expect(within(rowOf('j-101')).getByTestId(TestIds.rowLabel)).toHaveTextContent('llama-finetune');
    expect(within(rowOf('j-103')).getByTestId(TestIds.rowLabel)).toHaveTextContent('j-103');
    expect(within(rowOf('j-101')).getByTestId(TestIds.rowTotal)).toHaveTextContent('12 MJ');
    expect(within(rowOf('j-102')).getByTestId(TestIds.rowTotal)).toHaveTextContent('5.20 MJ');
  });

  it('sizes segments in proportion to energy (largest job = 100 %)', () => {
    renderPanel('basic');
    const max = expectedTotal(BASIC_JOBS[0]);
    for (const job of BASIC_JOBS) {
      for (const seg of segments(rowOf(job.job_id))) {
        const value = Number(seg.getAttribute('data-value'));
        expect(widthOf(seg)).toBeCloseTo((value / max) * 100, 6);
      }
    }
    const sum = segments(rowOf('j-101')).reduce((s, el) => s + widthOf(el), 0);
    expect(sum).toBeCloseTo(100, 6);
  });

  it('shows a missing component as nothing drawn (0), not a crash', () => {
    renderPanel('basic');
    const comps = segments(rowOf('j-103')).map((s) => s.getAttribute('data-component'));
    expect(comps).toEqual(['compute', 'store', 'cooling']);
  });

  it('shows unknown component values as "other" and unattributed as a muted row', () => {
    renderPanel('basic');
    expect(segments(rowOf('j-104')).map((s) => s.getAttribute('data-component'))).toContain('other');
    expect(rowOf('unattributed').getAttribute('data-kind')).toBe('unattributed');
    expect(screen.getAllByTestId(TestIds.legendItem).map((i) => i.getAttribute('data-component'))).toEqual([
      'compute',
      'transmit',
      'store',
      'cooling',
      'other',
    ]);
  });

  it('renders the same bars from a table frame (format=table)', () => {
    const { unmount } = renderPanel('basic');
    const fromSeries = rows().map((r) => [r.getAttribute('data-job'), r.getAttribute('data-total')]);
    unmount();
    renderPanel('basicTable');
    expect(rows().map((r) => [r.getAttribute('data-job'), r.getAttribute('data-total')])).toEqual(fromSeries);
  });

  it('shows the empty state for no data', () => {
    renderPanel('empty');
    expect(screen.getByTestId(TestIds.empty)).toHaveTextContent('No energy data');
    expect(screen.queryByTestId(TestIds.panel)).not.toBeInTheDocument();
  });

  it('draws a single job at full width', () => {
    renderPanel('single');
    expect(rows()).toHaveLength(1);
    expect(segments(rows()[0]).reduce((s, el) => s + widthOf(el), 0)).toBeCloseTo(100, 6);
  });

  it('marks NaN / negative values invalid and does not draw them', () => {
    renderPanel('invalid');
    const bad = rowOf('j-201');
    expect(within(bad).getByTestId(TestIds.invalid)).toHaveTextContent('invalid: transmit, store');
    expect(segments(bad).map((s) => s.getAttribute('data-component'))).toEqual(['compute', 'cooling']);
    expect(within(bad).getByTestId(TestIds.rowTotal)).toHaveTextContent('3 MJ');
    const allBad = rowOf('j-202');
    expect(segments(allBad)).toHaveLength(0);
    expect(within(allBad).getByTestId(TestIds.invalid)).toBeInTheDocument();
    expect(within(rowOf('j-200')).queryByTestId(TestIds.invalid)).not.toBeInTheDocument();
  });

  it('caps hundreds of jobs and folds the rest into "others"', () => {
    renderPanel('many');
    expect(rows()).toHaveLength(MAX_ROWS + 1);
    const others = rows()[MAX_ROWS];
    expect(others.getAttribute('data-kind')).toBe('others');
    expect(within(others).getByTestId(TestIds.rowLabel)).toHaveTextContent(`Others (${500 - MAX_ROWS} jobs)`);
    // Bars are scaled to the largest job, not to the (larger) others row.
    const topWidth = segments(rows()[0]).reduce((s, el) => s + widthOf(el), 0);
    expect(topWidth).toBeCloseTo(100, 6);
  });

  it('honours top N', () => {
    renderPanel('manyTop');
    expect(rows()).toHaveLength(11);
    expect(rows()[10]).toHaveAttribute('data-kind', 'others');
  });

  it('shows a tooltip with J / kWh / % per component on hover', () => {
    renderPanel('basic');
    fireEvent.mouseMove(within(rowOf('j-101')).getByTestId(TestIds.rowTrack), { clientX: 100, clientY: 20 });
    const tip = screen.getByTestId(TestIds.tooltip);
    expect(tip).toHaveTextContent('llama-finetune');
    const compute = tip.querySelector('tr[data-component="compute"]')!;
    expect(compute).toHaveTextContent('7.20 MJ');
    expect(compute).toHaveTextContent('2.00 kWh');
    expect(compute).toHaveTextContent('60.0%');
    expect(tip.querySelector('tr[data-component="total"]')).toHaveTextContent('3.33 kWh');
    fireEvent.mouseLeave(screen.getByTestId(TestIds.barsView));
    expect(screen.queryByTestId(TestIds.tooltip)).not.toBeInTheDocument();
  });

  it('shows CO₂ and cost columns', () => {
    renderPanel('co2Cost');
    const r = rowOf('j-101');
    // 12 MJ = 3.333 kWh; × 400 g/kWh = 1.33 kg; × 0.25 = €0.83
    expect(within(r).getByTestId(TestIds.rowCo2)).toHaveTextContent('1.33 kg');
    expect(within(r).getByTestId(TestIds.rowCost)).toHaveTextContent('€0.83');
  });

  it('uses the display unit (kWh) from the field config', () => {
    renderPanel('basic', {}, { defaults: { unit: 'kwatth' }, overrides: [] });
    expect(within(rowOf('j-101')).getByTestId(TestIds.rowTotal)).toHaveTextContent('3.33 kWh');
  });

  it('links job names to the job dashboard URL template', () => {
    renderPanel('basic', { jobLinkUrl: '/d/jf-job?var-job_id=${job_id}' });
    const link = within(rowOf('j-102')).getByTestId(TestIds.rowLink);
    expect(link).toHaveAttribute('href', '/d/jf-job?var-job_id=j-102');
  });

  it('applies a colour override on a component series', () => {
    const frames = seriesFrames(BASIC_JOBS);
    for (const f of frames) {
      if (f.fields[1].labels?.component === 'cooling') {
        f.fields[1].config.color = { mode: FieldColorModeId.Fixed, fixedColor: '#00ff00' };
      }
    }
    renderPanel('basic', {}, undefined, frames);
    const cooling = segments(rowOf('j-101')).find((s) => s.getAttribute('data-component') === 'cooling')!;
    expect(cooling.style.background).toBe('rgb(0, 255, 0)');
  });
});

describe('EnergySplitPanel – other views', () => {
  it('table view lists jobs with per-component cells, totals, CO₂ and cost', () => {
    renderPanel('co2Cost', { view: 'table' });
    const trs = screen.getAllByTestId(TestIds.tableRow);
    expect(trs).toHaveLength(5);
    const cell = (tr: HTMLElement, col: string) =>
      within(tr)
        .getAllByTestId(TestIds.tableCell)
        .find((c) => c.getAttribute('data-column') === col)!;
    expect(cell(trs[0], 'compute')).toHaveTextContent('7.20 MJ');
    expect(cell(trs[0], 'total')).toHaveTextContent('12 MJ');
    expect(cell(trs[0], 'co2')).toHaveTextContent('1.33 kg');
    expect(cell(trs[0], 'cost')).toHaveTextContent('€0.83');
    const j103 = trs.find((t) => t.getAttribute('data-job') === 'j-103')!;
    expect(cell(j103, 'transmit')).toHaveTextContent('0 J');
  });

  it('table view marks invalid cells', () => {
    renderPanel('invalid', { view: 'table' });
    expect(screen.getAllByTestId(TestIds.invalid)).toHaveLength(4);
  });

  it('donut view for the whole selection has one arc per component', () => {
    renderPanel('basic', { view: 'donut' });
    expect(screen.getAllByTestId(TestIds.donutChart)).toHaveLength(1);
    const arcs = screen.getAllByTestId(TestIds.donutArc);
    expect(arcs.map((a) => a.getAttribute('data-component'))).toEqual([
      'compute',
      'transmit',
      'store',
      'cooling',
      'other',
    ]);
    const total = BASIC_JOBS.reduce((s, j) => s + expectedTotal(j), 0);
    expect(screen.getByTestId(TestIds.donutTotal)).toHaveTextContent(`${(total / 1e6).toFixed(1)} MJ`);
  });

  it('donut view per job draws one donut per row', () => {
    renderPanel('invalid', { view: 'donut', donutMode: 'perJob' });
    expect(screen.getAllByTestId(TestIds.donutChart)).toHaveLength(INVALID_JOBS.length);
    expect(screen.getAllByTestId(TestIds.invalid)).toHaveLength(2);
  });

  it('hides the legend when switched off', () => {
    renderPanel('basic', { showLegend: false });
    expect(screen.queryByTestId(TestIds.legend)).not.toBeInTheDocument();
  });

  it('warns when the carbon intensity query is missing', () => {
    renderPanel('basic', { co2Source: 'query', carbonRefId: 'Q' });
    expect(screen.getByTestId(TestIds.warning)).toHaveTextContent('no carbon intensity in query Q');
  });
});

describe('EnergySplitPanel – energy per unit of work', () => {
  const sum = (v: Record<string, number>) => Object.values(v).reduce((a, b) => a + b, 0);

  it('draws one block per unit, each bar scaled to its own unit, with J/unit, kWh, CO₂ and cost per million', () => {
    renderPanel('efficiency');
    const groups = screen.getAllByTestId(TestIds.efficiencyGroup);
    expect(groups.map((g) => g.getAttribute('data-unit'))).toEqual(['samples', 'steps', 'tokens']);
    const tokens = groups[2];
    expect(within(tokens).getByText('Energy per token')).toBeInTheDocument();
    const rowsIn = within(tokens).getAllByTestId(TestIds.efficiencyRow);
    expect(rowsIn.map((r) => r.getAttribute('data-job'))).toEqual(['j-302', 'j-301']);
    const llama = EFFICIENCY_JOBS[1];
    const gpt2 = EFFICIENCY_JOBS[0];
    // gpt2's compute segment, relative to llama (the largest J/token)
    const seg = within(rowsIn[1])
      .getAllByTestId(TestIds.segment)
      .find((s) => s.getAttribute('data-component') === 'compute')!;
    expect(widthOf(seg)).toBeCloseTo((gpt2.values.compute / sum(llama.values)) * 100, 6);
    // the samples job fills its own axis, whatever the tokens jobs do
    const resnet = within(groups[0]).getAllByTestId(TestIds.efficiencyRow)[0];
    const widths = within(resnet).getAllByTestId(TestIds.segment).map(widthOf);
    expect(widths.reduce((a, b) => a + b, 0)).toBeCloseTo(100, 6);
    // gpt2: 6.49 mJ/token → 6 490 J per million = 0.0018 kWh; × 400 g/kWh; × 0.25 per kWh
    const total = sum(gpt2.values);
    expect(within(rowsIn[1]).getByTestId(TestIds.effPerUnit)).toHaveTextContent('6.49 mJ');
    const kwh = (total * 1e6) / 3.6e6;
    expect(within(rowsIn[1]).getByTestId(TestIds.effKwh)).toHaveTextContent(`${kwh.toFixed(5)} kWh`);
    expect(within(rowsIn[1]).getByTestId(TestIds.effCo2)).toHaveTextContent(
      `${Math.round(kwh * CARBON_INTENSITY * 1000)} mg`
    );
    expect(within(rowsIn[1]).getByTestId(TestIds.effCost)).toHaveTextContent(`€${(kwh * PRICE_PER_KWH).toFixed(2)}`);
  });

  it('the legend names the components without summing values across units', () => {
    renderPanel('efficiency');
    const legend = screen.getByTestId(TestIds.legend);
    expect(legend).toHaveTextContent('Compute');
    expect(legend).not.toHaveTextContent('%');
  });

  it('shows its own empty state when no series has a unit', () => {
    renderPanel('efficiency', {}, undefined, seriesFrames(BASIC_JOBS));
    expect(screen.getByTestId(TestIds.empty)).toHaveTextContent('No energy per unit of work');
  });

  it('table view gains J/unit and per-million columns for every unit in the work query', () => {
    renderPanel('tableWork');
    const row = screen.getAllByTestId(TestIds.tableRow).find((r) => r.getAttribute('data-job') === 'j-101')!;
    const cell = (c: string) =>
      within(row)
        .getAllByTestId(TestIds.tableCell)
        .find((x) => x.getAttribute('data-column') === c)!;
    expect(cell('per-tokens')).toHaveTextContent('4 mJ'); // 12 MJ / 3e9 tokens
    expect(cell('kwh-per-million-tokens')).toHaveTextContent('0.00111 kWh');
    expect(cell('co2-per-million-tokens')).toHaveTextContent('444 mg'); // 0.00111 kWh × 400 g/kWh
    expect(cell('per-samples').textContent).toBe(''); // j-101 reports no samples
    expect(screen.getByText('J/token')).toBeInTheDocument();
    expect(screen.getByText('kWh/M samples')).toBeInTheDocument();
  });
});
