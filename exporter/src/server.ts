import * as http from 'http';
import type { RequestListener, Server } from 'http';
import express, { type Express, type Request, type RequestHandler, type Response, type Router } from 'express';
import type { Metrics } from './metrics';
import type { TickSnapshot } from './snapshot';
import type { Sampler } from './sampler';
import type { Logger } from './util/log';
import { VERSION } from './version';

/** The thin HTTP layer: /metrics from the per-tick cache, /healthz, a landing page, and mounted routers. */

export interface ServerOptions {
  metrics: Metrics;
  sampler: Sampler;
  log: Logger;
  telemetryPath: string;
  intervalMs: number;
  mode: 'normal' | 'demo';
  /** Routers mounted at their path (the jobs API at /api/v1). */
  routers?: Array<{ path: string; router: Router }>;
  /** Extra lines for the landing page (cooling fallback notice, jobs count...). */
  notices?: () => string[];
  /** Mounted before every route: basic auth, headers, method/origin/content-type checks (web/). */
  guards?: RequestHandler[];
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Whether an Accept or Accept-Encoding header lists `token` with a q-value above 0. */
export function accepts(header: string | undefined, token: string): boolean {
  if (!header) return false;
  return header.split(',').some((part) => {
    const [name, ...params] = part.trim().split(';');
    if (name.trim().toLowerCase() !== token) return false;
    const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)).find((m) => m);
    return !q || Number(q[1]) > 0;
  });
}

export function wantsOpenMetrics(accept: string | undefined): boolean {
  return accepts(accept, 'application/openmetrics-text');
}

/** Power over the last interval per component and device, with how each was obtained. */
function powerTable(snap: TickSnapshot): string {
  const series = snap.node.filter((s) => s.domain !== 'facility' && s.watts !== undefined);
  if (series.length === 0) return '<p>waiting for the first interval…</p>';
  const rows = series.map(
    ({ labels: s, watts = 0 }) =>
      `<tr><td>${escapeHtml(s.component)}</td><td>${escapeHtml(s.device)}</td><td class="num">${watts.toFixed(1)} W</td><td>${escapeHtml(s.source)}${s.source === 'model' ? ' (estimate)' : ''}</td></tr>`,
  );
  const total = series.reduce((a, s) => a + (s.watts ?? 0), 0);
  return `<table><tr><th>component</th><th>device</th><th>power</th><th>source</th></tr>${rows.join('')}<tr><th>total</th><td></td><th class="num">${total.toFixed(1)} W</th><td></td></tr></table>`;
}

export function createApp(opts: ServerOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  for (const g of opts.guards ?? []) app.use(g);

  app.get(opts.telemetryPath, async (req: Request, res: Response) => {
    try {
      const gzip = accepts(req.headers['accept-encoding'], 'gzip');
      const out = await opts.metrics.render(wantsOpenMetrics(req.headers.accept), gzip);
      res.setHeader('Content-Type', out.contentType);
      res.setHeader('Vary', 'Accept, Accept-Encoding');
      if (gzip && out.gzip) {
        res.setHeader('Content-Encoding', 'gzip');
        res.end(out.gzip);
      } else {
        res.end(out.body);
      }
    } catch (err) {
      opts.log.error('rendering metrics failed', { err: (err as Error).message });
      res
        .status(500)
        .type('text/plain')
        .send(`error rendering metrics: ${(err as Error).message}\n`);
    }
  });

  app.get('/healthz', (_req, res) => {
    const ticks = opts.sampler.tickCount;
    const age = opts.sampler.sinceLastTick();
    // Healthy while ticks keep coming: a sampler stuck for 3 intervals (and 5 s) is not.
    const stale = age > Math.max(3 * opts.intervalMs, 5000);
    const status = ticks === 0 ? 'starting' : stale ? 'stalled' : 'ok';
    res.status(status === 'ok' ? 200 : 503).json({ status, ticks, last_tick_ms_ago: Number.isFinite(age) ? Math.round(age) : null });
  });

  app.get('/', (_req, res) => {
    const snap = opts.metrics.snapshot;
    const rows = snap.sources
      .map((s) => {
        const state = !s.present ? 'absent' : s.up ? 'up' : 'down';
        const detail = s.lastError
          ? escapeHtml(s.lastError)
          : s.devicesDown.length
            ? `devices down: ${escapeHtml(s.devicesDown.join(', '))}`
            : '';
        return `<tr><td>${escapeHtml(s.name)}</td><td class="${state}">${state}</td><td>${detail}</td></tr>`;
      })
      .join('\n');
    const notices = (opts.notices?.() ?? []).map((n) => `<p class="notice">${escapeHtml(n)}</p>`).join('\n');
    const power = powerTable(snap);
    const banner =
      opts.mode === 'demo'
        ? "<p class=\"demo\">DEMO MODE: replaying a recorded training job through a fake NVML library. These are not this machine's GPUs. The demo job's token count is reconstructed from the recording's step count and timing, not counted by a trainer.</p>"
        : '';
    res.type('html').send(`<!doctype html>
<html><head><meta charset="utf-8"><title>jouleflow exporter</title>
<style>body{font-family:sans-serif;margin:2em}td{padding:2px 12px}.up{color:green}.down{color:#c00}.absent{color:#888}.demo{background:#fd0;padding:8px;font-weight:bold}.notice{color:#555}.num{text-align:right}</style></head>
<body><h1>jouleflow ${escapeHtml(VERSION)}</h1>${banner}
<p>Energy per training job: compute, transmit, store and cooling.</p>
<ul><li><a href="${escapeHtml(opts.telemetryPath.replace(/^\//, ''))}">Metrics</a></li><li><a href="api/v1/jobs">Jobs</a></li><li><a href="healthz">Health</a></li></ul>
<h2>Power now</h2>${power}
<h2>Sources</h2><table><tr><th>source</th><th>state</th><th>detail</th></tr>
${rows}
</table>${notices}</body></html>`);
  });

  for (const r of opts.routers ?? []) app.use(r.path, r.router);
  return app;
}

/** Starts listening (on the server `createServer` makes: HTTPS, limits); resolves once bound, rejects with a clear message. */
export function listen(
  app: Express,
  host: string | undefined,
  port: number,
  createServer: (handler: RequestListener) => Server = (h) => http.createServer(h),
): Promise<Server> {
  const server = createServer(app);
  return new Promise((resolve, reject) => {
    server.once('listening', () => resolve(server));
    server.once('error', (err: NodeJS.ErrnoException) => {
      const where = `${host ?? ''}:${port}`;
      reject(
        new Error(
          err.code === 'EADDRINUSE' ? `cannot listen on ${where}: address already in use` : `cannot listen on ${where}: ${err.message}`,
        ),
      );
    });
    if (host === undefined) server.listen(port);
    else server.listen(port, host);
  });
}
