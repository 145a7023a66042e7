/**
 * Real-browser test of the built panel plugin, without a Grafana server: an esbuild-bundled harness page supplies
 * React and @grafana/* to grafana-plugin/dist/module.js through an AMD define shim and mounts the panel with fixture
 * frames (grafana-plugin/src/fixtures) in Grafana's ThemeContext. Driven by playwright-core with Debian's Chromium.
 * Needs `npm run build -w grafana-plugin` first. Screenshots: test/artifacts/panel-*.png.
 */
import { build } from 'esbuild';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Browser, BrowserContext, chromium, Locator, Page } from 'playwright-core';

import { BASIC_JOBS, EFFICIENCY_JOBS, expectedSplit, expectedTotal, INVALID_JOBS } from '../../grafana-plugin/src/fixtures/energy';
import { TestIds } from '../../grafana-plugin/src/testIds';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ROOT = path.resolve(__dirname, '../..');
const DIST = path.join(ROOT, 'grafana-plugin', 'dist');
const ARTIFACTS = path.join(ROOT, 'test', 'artifacts');
const ORIGIN = 'http://jouleflow.test';
const PLUGIN_PATH = '/public/plugins/jouleflow-energysplit-panel/';
const TIMEOUT = 60_000;

/** Totals as Grafana's joule unit formats them (checked by the unit tests as well). */
const EXPECTED_TOTAL_TEXT: Record<string, string> = {
  'j-101': '12 MJ',
  'j-102': '5.20 MJ',
  'j-103': '2.25 MJ',
  'j-104': '1.20 MJ',
  unattributed: '900 kJ',
};

let browser: Browser | undefined;
let context: BrowserContext | undefined;
let bundleDir = '';
const pageErrors: string[] = [];
const fileCache = new Map<string, Buffer>();

const byTestId = (id: string) => `[data-testid="${id}"]`;

async function bundleHarness(outDir: string): Promise<void> {
  await build({
    entryPoints: [path.join(__dirname, 'harness.tsx')],
    bundle: true,
    outfile: path.join(outDir, 'harness.js'),
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    jsx: 'automatic',
    // @grafana/ui pulls in fonts and monaco CSS; the panel needs none of them.
    loader: {
      '.ttf': 'empty',
      '.woff': 'empty',
      '.woff2': 'empty',
      '.eot': 'empty',
      '.css': 'empty',
      '.svg': 'empty',
      '.png': 'empty',
    },
    define: { 'process.env.NODE_ENV': '"production"', global: 'window' },
    minify: true, // ~19 MB unminified; minified parses faster on every page load
    logLevel: 'error',
  });
}

function contentType(file: string): string {
  if (file.endsWith('.js')) {
    return 'application/javascript';
  }
  if (file.endsWith('.html')) {
    return 'text/html';
  }
  return file.endsWith('.json') || file.endsWith('.map') ? 'application/json' : 'application/octet-stream';
}

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install it with "apt-get install -y chromium" (or set CHROMIUM_PATH)`);
  }
  if (!fs.existsSync(path.join(DIST, 'module.js'))) {
    throw new Error(`${path.join(DIST, 'module.js')} is missing: run "npm run build -w grafana-plugin" first`);
  }
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  bundleDir = fs.mkdtempSync(path.join(os.tmpdir(), 'jf-harness-'));
  await bundleHarness(bundleDir);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
  context = await browser.newContext({ viewport: { width: 1000, height: 480 }, deviceScaleFactor: 1 });
  // Serve everything from memory / disk: no server, no network.
  await context.route('**/*', async (route) => {
    const url = new URL(route.request().url());
    let file: string | undefined;
    if (url.origin !== ORIGIN) {
      return route.abort();
    }
    if (url.pathname === '/' || url.pathname === '/index.html') {
      file = path.join(__dirname, 'index.html');
    } else if (url.pathname === '/harness.js') {
      file = path.join(bundleDir, 'harness.js');
    } else if (url.pathname.startsWith(PLUGIN_PATH)) {
      const rel = path.normalize(url.pathname.slice(PLUGIN_PATH.length));
      file = rel.startsWith('..') ? undefined : path.join(DIST, rel);
    }
    if (!file || !fs.existsSync(file)) {
      return route.fulfill({ status: 404, body: 'not found' }); // fonts, icons: not needed
    }
    let body = fileCache.get(file);
    if (!body) {
      body = fs.readFileSync(file);
      fileCache.set(file, body);
    }
    return route.fulfill({ status: 200, contentType: contentType(file), body });
  });
}, 120_000);

afterAll(async () => {
  await context?.close();
  await browser?.close();
  if (bundleDir) {
    fs.rmSync(bundleDir, { recursive: true, force: true });
  }
});

interface OpenOptions {
  theme?: 'dark' | 'light';
  fixture?: string;
  options?: Record<string, unknown>;
  unit?: string;
  w?: number;
  h?: number;
}

async function openPanel(o: OpenOptions = {}): Promise<Page> {
  if (!context) {
    throw new Error('browser did not start (see beforeAll)');
  }
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${o.fixture ?? 'basic'}/${o.theme ?? 'dark'}: ${e.message}`));
  const q = new URLSearchParams({ theme: o.theme ?? 'dark', fixture: o.fixture ?? 'basic' });
  if (o.options) {
    q.set('options', JSON.stringify(o.options));
  }
  if (o.unit) {
    q.set('unit', o.unit);
  }
  if (o.w) {
    q.set('w', String(o.w));
  }
  if (o.h) {
    q.set('h', String(o.h));
  }
  await page.goto(`${ORIGIN}/index.html?${q.toString()}`);
  await page.waitForFunction('window.__jfReady === true || typeof window.__jfError === "string"', undefined, {
    timeout: 30_000,
  });
  const error = await page.evaluate<string | undefined>('window.__jfError');
  if (error) {
    throw new Error(`harness failed: ${error}`);
  }
  return page;
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.locator('#frame').screenshot({ path: path.join(ARTIFACTS, `panel-${name}.png`) });
}

async function width(locator: Locator): Promise<number> {
  const box = await locator.boundingBox();
  if (!box) {
    throw new Error('element is not visible');
  }
  return box.width;
}

/** Relative luminance (0–1) of a CSS rgb() colour. */
function luminance(rgb: string): number {
  const m = rgb.match(/\d+(\.\d+)?/g);
  if (!m) {
    throw new Error(`not a colour: ${rgb}`);
  }
  const [r, g, b] = m.slice(0, 3).map((v) => Number(v) / 255);
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

async function segmentWidthsOf(row: Locator): Promise<number[]> {
  const segs = row.locator(byTestId(TestIds.segment));
  const out: number[] = [];
  for (let j = 0; j < (await segs.count()); j++) {
    out.push(await width(segs.nth(j)));
  }
  return out;
}

async function segmentWidths(page: Page): Promise<Array<{ job: string; component: string; value: number; px: number }>> {
  const out: Array<{ job: string; component: string; value: number; px: number }> = [];
  const rows = page.locator(byTestId(TestIds.row));
  for (let i = 0; i < (await rows.count()); i++) {
    const row = rows.nth(i);
    const job = (await row.getAttribute('data-job')) ?? '';
    const segs = row.locator(byTestId(TestIds.segment));
    for (let j = 0; j < (await segs.count()); j++) {
      const seg = segs.nth(j);
      out.push({
        job,
        component: (await seg.getAttribute('data-component')) ?? '',
        value: Number(await seg.getAttribute('data-value')),
        px: await width(seg),
      });
    }
  }
  return out;
}

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

  it('raised no page errors', () => {
    expect(pageErrors).toEqual([]);
  });
});
