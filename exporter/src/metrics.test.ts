import * as http from 'http';
import type { AddressInfo } from 'net';
import { gunzipSync } from 'zlib';
import { Gauge } from 'prom-client';
import { Metrics, parseSamples } from './metrics';
import { Sampler } from './sampler';
import { createApp, listen } from './server';
import { EMPTY_SNAPSHOT, type NodeSeriesView, type TickSnapshot } from './snapshot';
import { silentLogger } from './util/log';

/**
 * Rendering is lazy and shared: a tick nobody scrapes costs nothing, and the first scrape of a
 * tick renders it once per format for every later scrape, compressed or not; only while every
 * tick is scraped is the next one rendered as it is published. Observed over real
 * HTTP, counting renderings with a prom-client collect() hook (prom-client calls it each time the
 * registry is written).
 */

function get(port: number, headers: http.OutgoingHttpHeaders): Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
      })
      .on('error', reject);
  });
}

/** Lets anything a publish might have started run its course (a rendering yields a few times). */
async function turns(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

/** Waits (a bounded time) for a condition that a rendering in the background makes true. */
async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  expect(condition()).toBe(true);
}

const LABELS = Object.freeze({ component: 'compute' as const, device: 'package-0', source: 'rapl' });

function snapshot(version: number, joules: number): TickSnapshot {
  const node: NodeSeriesView[] = [{ labels: LABELS, domain: 'cpu', joules, watts: joules / 10 }];
  return { ...EMPTY_SNAPSHOT, version, node };
}

test('a tick nobody scrapes is never rendered; one rendering per tick and format serves every scrape of it; ticks scraped in a row are rendered ahead', async () => {
  const metrics = new Metrics('normal', { processMetrics: false });
  let renderings = 0;
  new Gauge({
    name: 'test_renderings',
    help: 'Registry renderings so far.',
    registers: [metrics.registry],
    collect() {
      this.set(++renderings);
    },
  });
  const sampler = new Sampler({
    sources: [],
    metrics,
    log: silentLogger,
    intervalMs: 1000,
    timeoutMs: 800,
    cooling: { mode: 'pue', pue: 1.5, supplyAirCelsius: 20 },
    cpuCount: 1,
  });
  const app = createApp({ metrics, sampler, log: silentLogger, telemetryPath: '/metrics', intervalMs: 1000, mode: 'normal' });
  const server = await listen(app, '127.0.0.1', 0);
  const port = (server.address() as AddressInfo).port;
  try {
    for (let v = 1; v <= 5; v++) metrics.publish(snapshot(v, 100 * v));
    await turns();
    expect(renderings).toBe(0);

    const plain = await get(port, {});
    expect(plain.headers['content-encoding']).toBeUndefined();
    const zipped = await get(port, { 'accept-encoding': 'gzip' });
    expect(zipped.headers['content-encoding']).toBe('gzip');
    // Both scrapes got the bytes of one rendering (the counter inside it says which).
    expect(gunzipSync(zipped.body).equals(plain.body)).toBe(true);
    expect(renderings).toBe(1);
    const text = plain.body.toString('utf8');
    expect(text).toMatch(/^jouleflow_node_energy_joules_total\{component="compute",device="package-0",source="rapl"\} 500$/m);
    expect(text).toMatch(/^jouleflow_node_power_watts\{component="compute",device="package-0",source="rapl"\} 50$/m);
    expect(text).toMatch(/^test_renderings 1$/m);

    // Not even after a scrape: the next tick waits for its own first scrape.
    metrics.publish(snapshot(6, 650.5));
    await turns();
    expect(renderings).toBe(1);
    const next = gunzipSync((await get(port, { 'accept-encoding': 'gzip' })).body).toString('utf8');
    expect(renderings).toBe(2);
    expect(next).toMatch(/^jouleflow_node_energy_joules_total\{component="compute",device="package-0",source="rapl"\} 650.5$/m);

    // OpenMetrics renders the registry in its own format, over the same snapshot samples.
    const om = (await get(port, { accept: 'application/openmetrics-text; version=1.0.0' })).body.toString('utf8');
    expect(renderings).toBe(3);
    const energy = (t: string) =>
      parseSamples(
        t
          .split('\n')
          .filter((l) => l.startsWith('jouleflow_node_'))
          .join('\n'),
      );
    expect(energy(om)).toEqual(energy(next));
    expect(om.endsWith('# EOF\n')).toBe(true);

    // Snapshots 5 and 6 were both scraped: someone scrapes every tick, so the next one is rendered
    // as it is published (in the last scrape's format) and its first scrape does not render...
    metrics.publish(snapshot(7, 700));
    await until(() => renderings === 4);
    const seven = (await get(port, { accept: 'application/openmetrics-text' })).body.toString('utf8');
    expect(seven).toMatch(/^test_renderings 4$/m);
    expect(renderings).toBe(4);
    metrics.publish(snapshot(8, 800));
    await until(() => renderings === 5);
    // ...until a tick goes unscraped (8): from then on, rendering waits for a scrape again.
    metrics.publish(snapshot(9, 900));
    await turns();
    expect(renderings).toBe(5);
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test('a scrape during a rendering gets the current tick, or the one before it, never an older rendering', async () => {
  const metrics = new Metrics('normal', { processMetrics: false });
  const power = (r: { text: string }) =>
    parseSamples(
      r.text
        .split('\n')
        .filter((l) => l.startsWith('jouleflow_node_power_watts{'))
        .join('\n'),
    )[0].value;
  metrics.publish(snapshot(1, 10));
  expect(power(await metrics.render(false, false))).toBe(1);
  // Ticks 2..15 go unscraped (15 s scrape interval, 1 s ticks); two scrapers then arrive together.
  for (let v = 2; v <= 15; v++) metrics.publish(snapshot(v, 10 * v));
  const [a, b] = await Promise.all([metrics.render(false, false), metrics.render(false, false)]);
  expect(power(a)).toBe(15);
  expect(power(b)).toBe(15);

  // The previous tick's rendering (exactly one tick old) may serve a scrape concurrent with a rendering.
  metrics.publish(snapshot(16, 160));
  const [c, d] = await Promise.all([metrics.render(false, false), metrics.render(false, false)]);
  expect(power(c)).toBe(16);
  expect([15, 16]).toContain(power(d));
});
