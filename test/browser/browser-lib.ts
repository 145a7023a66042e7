/**
 * The real-browser harness shared by the panel's browser suites: Debian's Chromium driven by playwright-core, the
 * esbuild-bundled harness page (harness.tsx) and the built grafana-plugin/dist/module.js served from memory.
 */
import { build } from 'esbuild';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Browser, BrowserContext, chromium, Locator, Page } from 'playwright-core';

import { TestIds } from '../../grafana-plugin/src/testIds';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const ROOT = path.resolve(__dirname, '../..');
export const DIST = path.join(ROOT, 'grafana-plugin', 'dist');
export const ARTIFACTS = path.join(ROOT, 'test', 'artifacts');
export const ORIGIN = 'http://jouleflow.test';
export const PLUGIN_PATH = '/public/plugins/jouleflow-energysplit-panel/';
export const TIMEOUT = 60_000;

let browser: Browser | undefined;
let context: BrowserContext | undefined;
let bundleDir = '';
export const pageErrors: string[] = [];
const fileCache = new Map<string, Buffer>();

export const byTestId = (id: string) => `[data-testid="${id}"]`;

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

/** Registers the suite's hooks: Chromium started once, the harness bundled once, all served from memory. */
export function useBrowser(): void {
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
}

export interface OpenOptions {
  theme?: 'dark' | 'light';
  fixture?: string;
  options?: Record<string, unknown>;
  unit?: string;
  w?: number;
  h?: number;
}

export async function openPanel(o: OpenOptions = {}): Promise<Page> {
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

export async function screenshot(page: Page, name: string): Promise<void> {
  await page.locator('#frame').screenshot({ path: path.join(ARTIFACTS, `panel-${name}.png`) });
}

export async function width(locator: Locator): Promise<number> {
  const box = await locator.boundingBox();
  if (!box) {
    throw new Error('element is not visible');
  }
  return box.width;
}

/** Relative luminance (0–1) of a CSS rgb() colour. */
export function luminance(rgb: string): number {
  const m = rgb.match(/\d+(\.\d+)?/g);
  if (!m) {
    throw new Error(`not a colour: ${rgb}`);
  }
  const [r, g, b] = m.slice(0, 3).map((v) => Number(v) / 255);
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

export async function segmentWidthsOf(row: Locator): Promise<number[]> {
  const segs = row.locator(byTestId(TestIds.segment));
  const out: number[] = [];
  for (let j = 0; j < (await segs.count()); j++) {
    out.push(await width(segs.nth(j)));
  }
  return out;
}

export async function segmentWidths(page: Page): Promise<Array<{ job: string; component: string; value: number; px: number }>> {
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
