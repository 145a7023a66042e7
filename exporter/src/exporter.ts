import type { Server } from 'http';
import type { Router } from 'express';
import type { Config } from './config';
import { isLoopbackHost, parseListenAddress } from './config';
import { Metrics } from './metrics';
import type { Clock, JobTracker } from './sampler';
import { Sampler } from './sampler';
import { createApp, listen } from './server';
import { createSources } from './sources';
import { coolingMeters } from './sources/meters';
import type { Source } from './sources/types';
import type { Logger } from './util/log';
import { readProcStat } from './util/procfs';
import { serverLimits, webGuards } from './web';
import { boundToLoopback } from './web/loopback';
import { WebFront } from './web/web-server';

/** Wires config → sources → sampler → metrics → HTTP. Used by `serve`, `run` (in-process) and tests. */

export interface ExporterOptions {
  log: Logger;
  clock?: Clock;
  mode?: 'normal' | 'demo';
  /** Extra sources (tests, demo) added to the configured ones. */
  extraSources?: Source[];
  jobs?: JobTracker;
  routers?: Array<{ path: string; router: Router }>;
  notices?: () => string[];
  /** TLS, basic auth and limits from --web.config.file (serve loads it first, to fail early). */
  web?: WebFront;
}

export interface Exporter {
  config: Config;
  metrics: Metrics;
  sampler: Sampler;
  server?: Server;
  /** The bound address, e.g. http://127.0.0.1:10042 (https with TLS) */
  url?: string;
  /** Judged on the bound address once listening (before: on the configured host). */
  listenLoopbackOnly: boolean;
  close(): Promise<void>;
}

export async function createExporter(config: Config, opts: ExporterOptions): Promise<Exporter> {
  const mode = opts.mode ?? 'normal';
  const metrics = new Metrics(mode);
  if (config.carbon.gramsPerKwh !== undefined) metrics.carbon.set({ zone: config.carbon.zone }, config.carbon.gramsPerKwh);
  const sources = [...(await createSources(config, opts.log)), ...(opts.extraSources ?? [])];
  const cpuCount = await readProcStat(config.paths.procfs)
    .then((s) => s.cpus)
    .catch(() => 1);
  const sampler = new Sampler({
    sources,
    metrics,
    log: opts.log.child({ component: 'sampler' }),
    intervalMs: config.sample.interval,
    timeoutMs: config.sample.timeout ?? Math.max(1, Math.floor(config.sample.interval * 0.8)),
    cooling: config.cooling,
    meters: coolingMeters(config),
    cpuCount,
    clock: opts.clock,
    jobs: opts.jobs,
  });
  await sampler.init();
  const { host } = parseListenAddress(config.web.listenAddress);
  return {
    config,
    metrics,
    sampler,
    listenLoopbackOnly: isLoopbackHost(host),
    async close() {
      await sampler.stop();
    },
  };
}

/** Starts sampling and serving HTTP. */
export async function startExporter(config: Config, opts: ExporterOptions): Promise<Exporter> {
  const exp = await createExporter(config, opts);
  const { host, port } = parseListenAddress(config.web.listenAddress);
  const front = opts.web ?? (await WebFront.create(undefined, serverLimits(config), opts.log));
  const app = createApp({
    metrics: exp.metrics,
    sampler: exp.sampler,
    log: opts.log,
    telemetryPath: config.web.telemetryPath,
    intervalMs: config.sample.interval,
    mode: opts.mode ?? 'normal',
    routers: opts.routers,
    notices: () => [...exp.sampler.coolingNotices, ...(opts.notices?.() ?? [])],
    guards: webGuards(front, config.web.telemetryPath),
  });
  await exp.sampler.tick();
  exp.sampler.start();
  let server: Server;
  try {
    server = await listen(app, host, port, (handler) => front.createServer(handler));
  } catch (err) {
    await exp.sampler.stop();
    throw err;
  }
  const addr = server.address();
  const boundPort = typeof addr === 'object' && addr ? addr.port : port;
  const urlHost = !host || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return {
    ...exp,
    server,
    url: `${front.scheme}://${urlHost}:${boundPort}`,
    listenLoopbackOnly: boundToLoopback(server),
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      });
      await exp.sampler.stop();
    },
  };
}
