import { monitorEventLoopDelay } from 'perf_hooks';
import { spawn } from 'child_process';
import { createServer } from 'http';
import type { AddressInfo } from 'net';
import { Metrics } from '../metrics';
import { createApp, listen } from '../server';
import { Sampler } from '../sampler';
import type { Reading } from '../core';
import type { SampleResult, Source } from '../sources/types';
import { silentLogger } from '../util/log';
import { percentile, type BenchRow } from './table';

/**
 * Core costs: sampler CPU per tick, event-loop delay, and /metrics latency over a synthetic node with
 * many devices (counters on every series), all in-process so the numbers are the exporter's own.
 */

class SyntheticSource implements Source {
  readonly name = 'synthetic';
  /** Joules each device's counter gains per sample: whole numbers by default, 0 for "nothing changed". */
  step = 10;
  private joules = 0;
  constructor(private readonly devices: number) {}
  async init() {
    return true;
  }
  async sample(): Promise<SampleResult> {
    this.joules += this.step;
    const readings: Reading[] = [];
    for (let i = 0; i < this.devices; i++) {
      readings.push({
        kind: 'counter',
        component: 'compute',
        domain: 'cpu',
        device: `dev${i}`,
        source: this.name,
        joules: this.joules + i,
      });
    }
    return { readings };
  }
}

async function syntheticNode(
  devices: number,
  clock?: () => number,
): Promise<{ metrics: Metrics; sampler: Sampler; source: SyntheticSource }> {
  const metrics = new Metrics();
  const source = new SyntheticSource(devices);
  const sampler = new Sampler({
    sources: [source],
    metrics,
    log: silentLogger,
    intervalMs: 1000,
    timeoutMs: 800,
    cooling: { mode: 'pue', pue: 1.56, supplyAirCelsius: 20 },
    cpuCount: 16,
    clock,
  });
  await sampler.init();
  return { metrics, sampler, source };
}

interface RenderCost {
  /** Wall time of the first rendering of a tick (text, no gzip), sorted. */
  wall: number[];
  /** CPU time of the same renderings (this process, all threads), sorted. */
  cpu: number[];
  /** CPU time of gzipping each rendering (level 1, libuv's pool), sorted. */
  gzipCpu: number[];
}

/** `ticks` ticks, each rendered once (as its first scrape would) and then gzipped. */
async function renderEachTick(metrics: Metrics, sampler: Sampler, advance: () => void, ticks: number): Promise<RenderCost> {
  const cost: RenderCost = { wall: [], cpu: [], gzipCpu: [] };
  for (let i = 0; i < ticks; i++) {
    advance();
    await sampler.tick();
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await metrics.render(false, false, false);
    cost.wall.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const c1 = process.cpuUsage();
    await metrics.render(false, true, false);
    const c2 = process.cpuUsage();
    cost.cpu.push((c1.user - c0.user + c1.system - c0.system) / 1000);
    cost.gzipCpu.push((c2.user - c1.user + c2.system - c1.system) / 1000);
  }
  for (const a of [cost.wall, cost.cpu, cost.gzipCpu]) a.sort((x, y) => x - y);
  return cost;
}

async function measure(devices: number): Promise<BenchRow[]> {
  let now = 0;
  const { metrics, sampler, source } = await syntheticNode(devices, () => now);
  const advance = () => (now += 1000);
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const ticks = 50;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < ticks; i++) {
    advance();
    await sampler.tick();
    await new Promise((r) => setImmediate(r));
  }
  const cpu = process.cpuUsage(cpu0);
  loop.disable();
  // Scrapes: the first after a tick renders, the rest of that tick hit the cache. The first
  // renderings run before the JIT has compiled the renderer (tens of ms, once per process): not counted.
  await renderEachTick(metrics, sampler, advance, 20);
  const changing = await renderEachTick(metrics, sampler, advance, 300);
  const warm: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t0 = process.hrtime.bigint();
    await metrics.render(false, false);
    warm.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  warm.sort((a, b) => a - b);
  const bytes = (await metrics.render(false, false, false)).body.length;
  // Every counter unchanged (and every power 0) since the tick before: each line is reused.
  source.step = 0;
  await renderEachTick(metrics, sampler, advance, 2);
  const unchanged = await renderEachTick(metrics, sampler, advance, 100);
  // Fractional joules, as real counters have: every number is new and takes a full float64 formatting.
  source.step = 10.123456789;
  const fractional = await renderEachTick(metrics, sampler, advance, 100);
  const series = await seriesCount(metrics);
  const area = `core ${devices} devices`;
  return [
    { area, metric: 'sampler CPU per tick', value: (cpu.user + cpu.system) / 1000 / ticks, unit: 'ms' },
    { area, metric: 'event-loop delay max while ticking', value: loop.max / 1e6, unit: 'ms', note: 'a tick runs on the loop' },
    { area, metric: 'render p50 (once per tick)', value: percentile(changing.wall, 50), unit: 'ms', note: `${series} series` },
    { area, metric: 'render p99 (once per tick)', value: percentile(changing.wall, 99), unit: 'ms' },
    {
      area,
      metric: 'render CPU p50 / p99',
      value: percentile(changing.cpu, 50),
      unit: 'ms',
      note: `p99 ${percentile(changing.cpu, 99).toFixed(2)} ms`,
    },
    {
      area,
      metric: 'render p50, no value changed since the last tick',
      value: percentile(unchanged.wall, 50),
      unit: 'ms',
      note: `CPU p50 ${percentile(unchanged.cpu, 50).toFixed(2)} ms`,
    },
    {
      area,
      metric: 'render p50, fractional joules (every number new)',
      value: percentile(fractional.wall, 50),
      unit: 'ms',
      note: `CPU p50 ${percentile(fractional.cpu, 50).toFixed(2)} ms`,
    },
    {
      area,
      metric: 'gzip CPU p50 per rendering',
      value: percentile(changing.gzipCpu, 50),
      unit: 'ms',
      note: 'level 1, once per tick and format',
    },
    { area, metric: '/metrics scrape p50 (cached)', value: percentile(warm, 50), unit: 'ms' },
    { area, metric: '/metrics bytes', value: bytes / 1024, unit: 'KiB' },
  ];
}

/**
 * Latencies of gzip GETs of each of `urls` for `ms`, from another process, as Prometheus scrapes:
 * the URLs in turn, so that each sees the same moments of the server process (ticks, GC, load).
 */
async function scrapeInTurn(urls: string[], ms: number): Promise<Array<{ lat: number[]; bytes: number }>> {
  const client = `
    const http = require('http');
    const agent = new http.Agent({ keepAlive: true });
    const urls = ${JSON.stringify(urls)};
    const out = urls.map(() => ({ lat: [], bytes: 0 }));
    const end = Date.now() + ${ms};
    const get = (i) => new Promise((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      http.get(urls[i], { agent, headers: { 'accept-encoding': 'gzip' } }, (res) => {
        let n = 0;
        res.on('data', (d) => (n += d.length));
        res.on('end', () => { out[i].bytes = n; out[i].lat.push(Number(process.hrtime.bigint() - t0) / 1e6); resolve(); });
      }).on('error', reject);
    });
    (async () => {
      while (Date.now() < end) {
        for (let i = 0; i < urls.length; i++) await get(i);
        await new Promise((r) => setTimeout(r, 20));
      }
      process.stdout.write(JSON.stringify(out));
    })();`;
  const child = spawn(process.execPath, ['-e', client], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => child.once('exit', r));
  const r = JSON.parse(out) as Array<{ lat: number[]; bytes: number }>;
  for (const x of r) x.lat.sort((a, b) => a - b);
  return r;
}

/**
 * /metrics over HTTP at ~20 000 series while the sampler ticks every 1 s, beside a plain Node HTTP
 * server serving the same gzip bytes in the same process, scraped in turn with it (the goal: p99
 * ≤ 3× the plain server's).
 */
async function measureHttp(devices: number): Promise<BenchRow[]> {
  const { metrics, sampler } = await syntheticNode(devices);
  await sampler.tick();
  const body = (await metrics.render(false, true, false)).gzip ?? Buffer.alloc(0);
  sampler.start();
  const app = createApp({ metrics, sampler, log: silentLogger, telemetryPath: '/metrics', intervalMs: 1000, mode: 'normal' });
  const server = await listen(app, '127.0.0.1', 0);
  const plain = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4', 'content-encoding': 'gzip' });
    res.end(body);
  });
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', () => r()));
  const url = (s: typeof plain) => `http://127.0.0.1:${(s.address() as AddressInfo).port}/metrics`;
  const seconds = 10;
  const [exporter, baseline] = await scrapeInTurn([url(server), url(plain)], seconds * 1000);
  await new Promise<void>((r) => server.close(() => r()));
  await new Promise<void>((r) => plain.close(() => r()));
  await sampler.stop();
  const series = await seriesCount(metrics);
  const area = `http ${series} series`;
  const note = `${exporter.lat.length} scrapes of each over ${seconds} s from another process, in turn, 1 s ticks`;
  return [
    { area, metric: 'GET /metrics p50 (gzip)', value: percentile(exporter.lat, 50), unit: 'ms', note },
    { area, metric: 'GET /metrics p99 (gzip)', value: percentile(exporter.lat, 99), unit: 'ms' },
    {
      area,
      metric: 'plain Node server, same bytes: p50',
      value: percentile(baseline.lat, 50),
      unit: 'ms',
      note: 'same process, sampler ticking',
    },
    { area, metric: 'plain Node server, same bytes: p99', value: percentile(baseline.lat, 99), unit: 'ms' },
    { area, metric: 'response bytes (gzip)', value: exporter.bytes / 1024, unit: 'KiB' },
  ];
}

async function seriesCount(metrics: Metrics): Promise<number> {
  const text = (await metrics.render(false, false, false)).text;
  return text.split('\n').filter((l) => l && !l.startsWith('#')).length;
}

export async function benchCore(): Promise<BenchRow[]> {
  return [...(await measure(10)), ...(await measure(6660)), ...(await measureHttp(6660))];
}
