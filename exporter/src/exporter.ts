import type { Server } from 'http';
import type { Router } from 'express';
import type { Config } from './config';
import { isLoopbackHost, parseListenAddress } from './config';
import { Metrics } from './metrics';
import type { Clock, JobsView, JobTracker } from './sampler';
import { Sampler } from './sampler';
import { gpuDescriptions, measuredCpuDevices, scanHardware, type Hardware, type HardwareScan } from './inventory';
import { hardwareLandingLines, hardwareSeries, registerSeries } from './inventory/series';
import { coolingMeters, createSources } from './source-factory';
import { DramModelSource } from './sources/dram-model';
import type { Source } from './sources/types';
import type { GpuProcess } from './core';
import type { Attribution, JobUsage } from './model/attribution';
import type { StepResult } from './model/energy';
import type { Logger } from './util/log';
import { settleWithin } from './util/async';
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
  /**
   * `startExporter` only, instead of `jobs`, `routers` and `notices`: builds them once the sources'
   * init has started, so that loading the jobs API (express) and opening the ledger overlap the GPU
   * libraries' discovery on their worker threads. Done before serving: restored totals are in the
   * first exposition. A rejection stops the start-up.
   */
  jobsWhileInit?: () => Promise<Pick<ExporterOptions, 'jobs' | 'routers' | 'notices'>>;
  /** TLS, basic auth and limits from --web.config.file (serve loads it first, to fail early). */
  web?: WebFront;
}

/** The sampler's jobs tracker when it is built after the sampler (`jobsWhileInit`); set before the first tick. */
class LateJobTracker implements JobTracker {
  tracker?: JobTracker;

  usage(now: number, dtSeconds: number, gpuProcesses: readonly GpuProcess[]): Promise<JobUsage[]> {
    return this.tracker ? this.tracker.usage(now, dtSeconds, gpuProcesses) : Promise.resolve([]);
  }

  record(step: StepResult, attribution: Attribution): void {
    this.tracker?.record(step, attribution);
  }

  view(): JobsView {
    return this.tracker?.view?.() ?? { jobs: [], rejected: new Map(), errors: new Map() };
  }
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
  /** The inventory and model choices (in `serve`, completed after the first tick: inventory/index.ts), and their landing-page lines. */
  hardware: Hardware;
  hardwareLines: string[];
  close(): Promise<void>;
}

/** Builds the exporter with its sources initialised (each bounded by the init timeout) and the whole inventory taken. */
export async function createExporter(config: Config, opts: ExporterOptions): Promise<Exporter> {
  const exp = await buildExporter(config, opts, 'complete');
  await exp.sampler.init();
  publishHardware(exp);
  return exp;
}

/**
 * Hardware info and model-parameter series, and their landing-page lines (inventory/series.ts),
 * once the sources have said whether they are present (RAPL measured or the CPU model in use).
 */
function publishHardware(exp: Exporter): void {
  const sources = exp.sampler.sources;
  const present = (name: string) => exp.sampler.statuses.some((s) => s.name === name && s.present);
  const gpus = gpuDescriptions(sources);
  const used = {
    cpu: sources.some((s) => s.name === 'cpu-model'),
    dram: sources.some((s) => s.name === 'dram-model'),
    measured: measuredCpuDevices(sources, present),
  };
  registerSeries(exp.metrics.registry, hardwareSeries(exp.hardware.inventory, exp.hardware.choices, gpus, used));
  exp.hardwareLines.splice(0, exp.hardwareLines.length, ...hardwareLandingLines(exp.hardware.inventory, exp.hardware.choices, gpus, used));
}

/**
 * The inventory's second step (systeminformation: DIMMs, system) once it answers: the DRAM model
 * switches to the DIMMs' figure if that is the choice, and the hardware series are published again.
 */
async function completeHardware(exp: Exporter, scan: HardwareScan): Promise<void> {
  const complete = await scan.complete(true);
  exp.hardware.inventory = complete.inventory;
  exp.hardware.choices = complete.choices;
  const dram = complete.choices.dram;
  const model = exp.sampler.sources.find((s): s is DramModelSource => s instanceof DramModelSource);
  if (model && dram.basis === 'inventory') model.useDimmWatts(dram.value);
  publishHardware(exp);
}

/** `complete`: the sources start with the whole inventory's choices; `initial`: with the host facts' (serve). */
async function buildExporter(
  config: Config,
  opts: ExporterOptions,
  inventory: 'complete' | 'initial',
): Promise<Exporter & { hardwareScan: HardwareScan; lateJobs?: LateJobTracker }> {
  const mode = opts.mode ?? 'normal';
  const metrics = new Metrics(mode);
  if (config.carbon.gramsPerKwh !== undefined) metrics.carbon.set({ zone: config.carbon.zone }, config.carbon.gramsPerKwh);
  const cpuCount = await readProcStat(config.paths.procfs)
    .then((s) => s.cpus)
    .catch(() => 1);
  const hardwareScan = await scanHardware(config, opts.log.child({ component: 'inventory' }), cpuCount);
  const hardware = { ...(inventory === 'complete' ? await hardwareScan.complete() : hardwareScan.initial) };
  const sources = [...(await createSources(config, opts.log, hardware)), ...(opts.extraSources ?? [])];
  const lateJobs = opts.jobsWhileInit ? new LateJobTracker() : undefined;
  const sampler = new Sampler({
    sources,
    metrics,
    log: opts.log.child({ component: 'sampler' }),
    intervalMs: config.sample.interval,
    timeoutMs: config.sample.timeout,
    cooling: config.cooling,
    meters: coolingMeters(config),
    cpuCount,
    clock: opts.clock,
    jobs: lateJobs ?? opts.jobs,
  });
  const { host } = parseListenAddress(config.web.listenAddress);
  return {
    config,
    metrics,
    sampler,
    hardware,
    hardwareScan,
    lateJobs,
    hardwareLines: [],
    listenLoopbackOnly: isLoopbackHost(host),
    async close() {
      await sampler.stop();
    },
  };
}

/**
 * Serves HTTP at once, then initialises the sources (a slow one joins later, reported down with
 * `init_timeout` meanwhile) and starts sampling. For the cold start: the sources' init (GPU
 * libraries on their worker threads) runs while the jobs API loads (`jobsWhileInit`) and the HTTP
 * server is set up and bound; the first tick comes right after the init; systeminformation's part
 * of the inventory runs after it and is published when it answers.
 */
export async function startExporter(config: Config, opts: ExporterOptions): Promise<Exporter> {
  const { hardwareScan, lateJobs, ...exp } = await buildExporter(config, opts, 'initial');
  const init = exp.sampler.init();
  let jobs: Pick<ExporterOptions, 'jobs' | 'routers' | 'notices'> = opts;
  try {
    if (opts.jobsWhileInit && lateJobs) lateJobs.tracker = (jobs = await opts.jobsWhileInit()).jobs;
  } catch (err) {
    await settleWithin(init, config.sample.interval);
    await exp.sampler.stop();
    throw err;
  }
  const { createApp, listen } = await import('./server');
  const { host, port } = parseListenAddress(config.web.listenAddress);
  const front = opts.web ?? (await WebFront.create(undefined, serverLimits(config), opts.log));
  const app = createApp({
    metrics: exp.metrics,
    sampler: exp.sampler,
    log: opts.log,
    telemetryPath: config.web.telemetryPath,
    intervalMs: config.sample.interval,
    mode: opts.mode ?? 'normal',
    routers: jobs.routers,
    notices: () => [...exp.sampler.coolingNotices, ...exp.hardwareLines, ...(jobs.notices?.() ?? [])],
    guards: webGuards(front, config.web.telemetryPath),
  });
  let server: Server;
  try {
    server = await listen(app, host, port, (handler) => front.createServer(handler));
  } catch (err) {
    await settleWithin(init, config.sample.interval);
    await exp.sampler.stop();
    throw err;
  }
  // Sampling starts once the sources are up, or after one interval: a slow one joins later.
  await settleWithin(init, config.sample.interval);
  publishHardware(exp);
  await exp.sampler.tick();
  exp.sampler.start();
  // The first scrape (Prometheus asks for gzip) finds the first tick's exposition rendered: the
  // first render and the first gzip (JIT, zlib on the thread pool) are ~20-50 ms of a cold start.
  void exp.metrics.render(false, true, false).catch(() => undefined);
  // Not awaited by close(), and its worker does not hold the process open.
  void completeHardware(exp, hardwareScan).catch((err: Error) => opts.log.error('hardware inventory failed', { err: err.message }));
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
