/**
 * Real-browser test of the built panel plugin, without a Grafana server: an esbuild-bundled harness page supplies
 * React and @grafana/* to grafana-plugin/dist/module.js through an AMD define shim and mounts the panel with fixture
 * frames (grafana-plugin/src/fixtures) in Grafana's ThemeContext. Driven by playwright-core with Debian's Chromium.
 * Needs `npm run build -w grafana-plugin` first. Screenshots: test/artifacts/panel-*.png.
 */
import * as path from 'path';

import { BASIC_JOBS, EFFICIENCY_JOBS, expectedSplit, expectedTotal, INVALID_JOBS } from '../../grafana-plugin/src/fixtures/energy';
import { TestIds } from '../../grafana-plugin/src/testIds';
import {
  ARTIFACTS,
  TIMEOUT,
  pageErrors,
  byTestId,
  openPanel,
  screenshot,
  width,
  luminance,
  segmentWidthsOf,
  segmentWidths,
  useBrowser,
} from './browser-lib';

/** Totals as Grafana's joule unit formats them (checked by the unit tests as well). */
const EXPECTED_TOTAL_TEXT: Record<string, string> = {
  'j-101': '12 MJ',
  'j-102': '5.20 MJ',
  'j-103': '2.25 MJ',
  'j-104': '1.20 MJ',
  unattributed: '900 kJ',
};

useBrowser();

describe('energy split panel in a real browser (built dist/module.js)', () => {
  const backgrounds: Record<string, number> = {};

  it.each(['dark', 'light'] as const)(
    'draws stacked bars proportional to energy with labels and totals (%s theme)',
    async (theme) => {
      const page = await openPanel({ theme });
      await expect(page.locator(byTestId(TestIds.panel)).getAttribute('data-theme')).resolves.toBe(theme);

      const rows = page.locator(byTestId(TestIds.row));
      const order = [...BASIC_JOBS].sort((a, b) => expectedTotal(b) - expectedTotal(a)).map((j) => j.job_id);
      await expect(rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-job')))).resolves.toEqual(order);

      for (const job of BASIC_JOBS) {
        const row = page.locator(`${byTestId(TestIds.row)}[data-job="${job.job_id}"]`);
        await expect(row.locator(byTestId(TestIds.rowLabel)).innerText()).resolves.toBe(job.job_name ?? job.job_id);
        await expect(row.locator(byTestId(TestIds.rowTotal)).innerText()).resolves.toBe(EXPECTED_TOTAL_TEXT[job.job_id]);
      }

      // Every segment: width = energy / largest total × track width (±1.5 px).
      const track = await width(page.locator(byTestId(TestIds.rowTrack)).first());
      const max = expectedTotal(BASIC_JOBS[0]);
      const segs = await segmentWidths(page);
      expect(segs.length).toBe(BASIC_JOBS.reduce((n, j) => n + Object.values(expectedSplit(j)).filter((v) => v > 0).length, 0));
      for (const s of segs) {
        const job = BASIC_JOBS.find((j) => j.job_id === s.job)!;
        expect(s.value).toBeCloseTo(expectedSplit(job)[s.component]);
        expect(Math.abs(s.px - (s.value / max) * track)).toBeLessThan(1.5);
      }
      // The largest job fills its track.
      const top = segs.filter((s) => s.job === 'j-101').reduce((a, s) => a + s.px, 0);
      expect(Math.abs(top - track)).toBeLessThan(2);

      // Themed: the page background follows the theme; component colours are distinct.
      backgrounds[theme] = luminance(await page.evaluate<string>('getComputedStyle(document.body).backgroundColor'));
      const colours = await page
        .locator(`${byTestId(TestIds.row)}[data-job="j-101"] ${byTestId(TestIds.segment)}`)
        .evaluateAll((els) => els.map((e) => e.getAttribute('style')?.match(/background:\s*([^;]+)/)?.[1]));
      expect(new Set(colours).size).toBe(4);
      await expect(page.locator(byTestId(TestIds.legendItem)).count()).resolves.toBe(5);

      await screenshot(page, `bars-${theme}`);
      await page.close();
    },
    TIMEOUT,
  );

  it(
    'themes differ: dark background is dark, light is light',
    () => {
      expect(backgrounds.dark).toBeLessThan(0.3);
      expect(backgrounds.light).toBeGreaterThan(0.7);
    },
    TIMEOUT,
  );

  it(
    'a table frame (format=table) draws the same bars as one frame per series',
    async () => {
      const a = await openPanel({ fixture: 'basic' });
      const b = await openPanel({ fixture: 'basicTable' });
      const wa = await segmentWidths(a);
      const wb = await segmentWidths(b);
      expect(wb.map((s) => [s.job, s.component, s.value])).toEqual(wa.map((s) => [s.job, s.component, s.value]));
      wb.forEach((s, i) => expect(Math.abs(s.px - wa[i].px)).toBeLessThan(0.5));
      await a.close();
      await b.close();
    },
    TIMEOUT,
  );

  it(
    'shows a tooltip with J / kWh / % per component',
    async () => {
      const page = await openPanel({ theme: 'dark' });
      await page.locator(`${byTestId(TestIds.row)}[data-job="j-101"] ${byTestId(TestIds.rowTrack)}`).hover();
      const tip = page.locator(byTestId(TestIds.tooltip));
      await tip.waitFor();
      const compute = await tip.locator('tr[data-component="compute"]').innerText();
      expect(compute).toContain('7.20 MJ');
      expect(compute).toContain('2.00 kWh');
      expect(compute).toContain('60.0%');
      await expect(tip.locator('tr[data-component="total"]').innerText()).resolves.toContain('3.33 kWh');
      await page.screenshot({ path: path.join(ARTIFACTS, 'panel-tooltip-dark.png') });
      await page.close();
    },
    TIMEOUT,
  );

  it(
    'table view with CO₂ (from a query) and cost columns, and job links',
    async () => {
      const page = await openPanel({
        theme: 'light',
        fixture: 'co2Cost',
        options: { view: 'table', jobLinkUrl: '/d/jouleflow-job/job?var-job_id=${job_id}' },
      });
      const first = page.locator(byTestId(TestIds.tableRow)).first();
      const cell = (col: string) => first.locator(`${byTestId(TestIds.tableCell)}[data-column="${col}"]`).innerText();
      await expect(cell('total')).resolves.toBe('12 MJ');
      await expect(cell('co2')).resolves.toBe('1.33 kg');
      await expect(cell('cost')).resolves.toBe('€0.83');
      await expect(first.locator(byTestId(TestIds.rowLink)).getAttribute('href')).resolves.toBe('/d/jouleflow-job/job?var-job_id=j-101');
      await expect(page.locator(byTestId(TestIds.tableRow)).count()).resolves.toBe(BASIC_JOBS.length);
      await screenshot(page, 'table-light');
      await page.close();
    },
    TIMEOUT,
  );

  it.each(['dark', 'light'] as const)(
    'donut view for the selection (%s theme)',
    async (theme) => {
      const page = await openPanel({ theme, options: { view: 'donut' }, h: 300 });
      await expect(page.locator(byTestId(TestIds.donutArc)).count()).resolves.toBe(5);
      await expect(page.locator(byTestId(TestIds.donutTotal)).textContent()).resolves.toBe('21.6 MJ');
      await screenshot(page, `donut-${theme}`);
      await page.close();
    },
    TIMEOUT,
  );

  it(
    'no data shows the empty state',
    async () => {
      const page = await openPanel({ fixture: 'empty' });
      await expect(page.locator(byTestId(TestIds.empty)).innerText()).resolves.toContain('No energy data');
      await expect(page.locator(byTestId(TestIds.row)).count()).resolves.toBe(0);
      await page.close();
    },
    TIMEOUT,
  );

  it(
    'NaN / negative values are marked invalid and not drawn',
    async () => {
      const page = await openPanel({ fixture: 'invalid' });
      const bad = page.locator(`${byTestId(TestIds.row)}[data-job="j-201"]`);
      await expect(bad.locator(byTestId(TestIds.invalid)).innerText()).resolves.toBe('invalid: transmit, store');
      await expect(
        bad.locator(byTestId(TestIds.segment)).evaluateAll((els) => els.map((e) => e.getAttribute('data-component'))),
      ).resolves.toEqual(['compute', 'cooling']);
      const allBad = page.locator(`${byTestId(TestIds.row)}[data-job="j-202"]`);
      await expect(allBad.locator(byTestId(TestIds.segment)).count()).resolves.toBe(0);
      await expect(page.locator(byTestId(TestIds.invalid)).count()).resolves.toBe(INVALID_JOBS.length - 1);
      await screenshot(page, 'invalid-dark');
      await page.close();
    },
    TIMEOUT,
  );

  it(
    'hundreds of jobs render quickly, capped, folded into "others", and scroll',
    async () => {
      const t0 = Date.now();
      const page = await openPanel({ fixture: 'many', theme: 'light' });
      const loadMs = Date.now() - t0;
      const renderMs = await page.evaluate<number>('window.__jfRenderMs');
      const rows = page.locator(byTestId(TestIds.row));
      await expect(rows.count()).resolves.toBe(201);
      await expect(rows.last().getAttribute('data-kind')).resolves.toBe('others');
      await expect(rows.last().locator(byTestId(TestIds.rowLabel)).innerText()).resolves.toBe('Others (300 jobs)');
      const scroll = await page.evaluate<{ sh: number; ch: number }>(
        `(() => { const b = document.querySelector('[data-testid="${TestIds.barsView}"]').parentElement; return { sh: b.scrollHeight, ch: b.clientHeight }; })()`,
      );
      expect(scroll.sh).toBeGreaterThan(scroll.ch);
      // Scaled to the largest job, not to the larger folded "others" row.
      const track = await width(rows.first().locator(byTestId(TestIds.rowTrack)));
      const top = await rows
        .first()
        .locator(byTestId(TestIds.segment))
        .evaluateAll((els) => els.length);
      expect(top).toBe(4);
      const topPx = (await segmentWidthsOf(rows.first())).reduce((a, b) => a + b, 0);
      expect(Math.abs(topPx - track)).toBeLessThan(2);
      expect(renderMs).toBeLessThan(5000);
      expect(loadMs).toBeLessThan(20_000);
      await screenshot(page, 'many-light');
      await page.close();
    },
    TIMEOUT,
  );

  it(
    'kWh display unit through the field config',
    async () => {
      const page = await openPanel({ unit: 'kwatth' });
      await expect(page.locator(`${byTestId(TestIds.row)}[data-job="j-101"] ${byTestId(TestIds.rowTotal)}`).innerText()).resolves.toBe(
        '3.33 kWh',
      );
      await page.close();
    },
    TIMEOUT,
  );

  it(
    'efficiency view: J per unit per component, one axis per unit (dark theme)',
    async () => {
      const page = await openPanel({ fixture: 'efficiency', h: 420 });
      const groups = page.locator(byTestId(TestIds.efficiencyGroup));
      await expect(groups.evaluateAll((els) => els.map((e) => e.getAttribute('data-unit')))).resolves.toEqual([
        'samples',
        'steps',
        'tokens',
      ]);
      // Each unit's largest job fills its own track: units never share an axis.
      const sum = (v: Record<string, number>) => Object.values(v).reduce((a, b) => a + b, 0);
      for (let i = 0; i < 3; i++) {
        const first = groups.nth(i).locator(byTestId(TestIds.efficiencyRow)).first();
        const px = (await segmentWidthsOf(first)).reduce((a, b) => a + b, 0);
        const track = await width(first.locator(':scope > div').nth(1));
        expect(Math.abs(px - track)).toBeLessThan(2);
      }
      // gpt2 in tokens, drawn against llama-7b: segment px ∝ J/token
      const tokens = groups.nth(2);
      const gpt2 = tokens.locator(`${byTestId(TestIds.efficiencyRow)}[data-job="j-301"]`);
      const track = await width(gpt2.locator(':scope > div').nth(1));
      const gpt2Px = (await segmentWidthsOf(gpt2)).reduce((a, b) => a + b, 0);
      expect(gpt2Px / track).toBeCloseTo(sum(EFFICIENCY_JOBS[0].values) / sum(EFFICIENCY_JOBS[1].values), 2);
      await expect(gpt2.locator(byTestId(TestIds.effPerUnit)).innerText()).resolves.toBe('6.49 mJ');
      await expect(gpt2.locator(byTestId(TestIds.effKwh)).innerText()).resolves.toBe('0.00180 kWh');
      await screenshot(page, 'efficiency-dark');
      await page.close();
    },
    TIMEOUT,
  );

  it(
    'table view gains J per unit and kWh / CO₂ per million units from the work query',
    async () => {
      const page = await openPanel({ theme: 'light', fixture: 'tableWork' });
      const row = page.locator(`${byTestId(TestIds.tableRow)}[data-job="j-101"]`);
      const cell = (col: string) => row.locator(`${byTestId(TestIds.tableCell)}[data-column="${col}"]`).innerText();
      await expect(cell('per-tokens')).resolves.toBe('4 mJ'); // 12 MJ / 3e9 tokens
      await expect(cell('kwh-per-million-tokens')).resolves.toBe('0.00111 kWh');
      await expect(cell('co2-per-million-tokens')).resolves.toBe('444 mg'); // × 400 g/kWh
      await expect(cell('per-samples')).resolves.toBe('');
      await screenshot(page, 'table-work-light');
      await page.close();
    },
    TIMEOUT,
  );

  it('raised no page errors', () => {
    expect(pageErrors).toEqual([]);
  });
});
