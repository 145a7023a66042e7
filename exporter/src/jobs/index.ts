import { readFileSync } from 'fs';
import type { Config } from '../config';
import { isLoopbackHost, parseListenAddress } from '../config';
import type { Logger } from '../util/log';
import { createJobsRouter } from './api';
import { Ledger } from './ledger';
import { defaultResolvers, MetadataService, type MetadataResolver } from './metadata';
import { JobRegistry } from './tracker';
import type { Router } from 'express';

/** Builds the jobs registry (with its ledger, resumed) and the API router from the configuration. */

export interface JobsSetup {
  registry: JobRegistry;
  router: Router;
  ledger?: Ledger;
  close(): void;
}

export function jobsToken(config: Config): string | undefined {
  const file = config.web.jobsTokenFile;
  if (file) {
    const t = readFileSync(file, 'utf8').trim();
    if (!t) throw new Error(`${file}: the jobs token file is empty`);
    return t;
  }
  const env = process.env[config.jobs.tokenEnv]?.trim();
  return env || undefined;
}

export function createRegistry(
  config: Config,
  log: Logger,
  opts: { ledger?: boolean; resume?: boolean; clock?: () => number } = {},
): { registry: JobRegistry; ledger?: Ledger } {
  let ledger: Ledger | undefined;
  if (opts.ledger !== false && config.jobs.ledger) {
    try {
      ledger = new Ledger(config.jobs.ledger);
    } catch (err) {
      log.warn('jobs ledger unavailable: job totals are kept in memory only', { ledger: config.jobs.ledger, err: (err as Error).message });
    }
  }
  const registry = new JobRegistry({
    procfs: config.paths.procfs,
    log: log.child({ component: 'jobs' }),
    ledger,
    clock: opts.clock,
    liveCap: config.jobs.liveCap,
    retentionMs: config.jobs.retention,
    checkpointMs: config.jobs.checkpointInterval,
    gpuWindow: config.jobs.gpuWindow,
    carbon: config.carbon,
    discovery: config.jobs.discovery,
  });
  if (opts.resume !== false) registry.resume();
  return { registry, ledger };
}

export function createJobs(config: Config, log: Logger): JobsSetup {
  const { registry, ledger } = createRegistry(config, log);
  const { host } = parseListenAddress(config.web.listenAddress);
  const router = createJobsRouter({ registry, log, loopbackOnly: isLoopbackHost(host), token: jobsToken(config) });
  const metadata = attachMetadata(registry, config, log);
  return {
    registry,
    router,
    ledger,
    close: () => {
      metadata.close();
      registry.close();
    },
  };
}

/** Scheduler metadata (Slurm, Kubernetes) for new jobs: the registry's onJobAdded/annotate hooks. */
export function attachMetadata(
  registry: JobRegistry,
  config: Pick<Config, 'jobs'>,
  log: Logger,
  resolvers?: MetadataResolver[],
): MetadataService {
  const mlog = log.child({ component: 'job-metadata' });
  const service = new MetadataService(
    resolvers ?? defaultResolvers(config.jobs.discovery, mlog),
    (id, meta) => registry.annotate(id, meta),
    mlog,
  );
  registry.onJobAdded = (job) => service.request(job.scheduler, job.id);
  return service;
}
