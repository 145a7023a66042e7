import { readFileSync } from 'fs';
import type { Config } from '../config';
import { ConfigError, isLoopbackHost, parseListenAddress } from '../config';
import type { Logger } from '../util/log';
import { createJobsRouter } from './api';
import { Ledger } from './ledger';
import { defaultResolvers, MetadataService, type MetadataResolver } from './metadata';
import { JobTracker } from './tracker';
import type { Router } from 'express';

/** Ticks between full scans of /proc: members are read every tick, new processes found within this many. */
const FULL_SCAN_EVERY = 5;

/** Builds the jobs registry (with its ledger, resumed) and the API router from the configuration. */

export interface JobsSetup {
  registry: JobTracker;
  router: Router;
  ledger?: Ledger;
  close(): void;
}

export function jobsToken(config: Config): string | undefined {
  const file = config.web.jobsTokenFile;
  if (file) {
    let t: string;
    try {
      t = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(
        `web.jobsTokenFile (--web.jobs-token-file): cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    if (!t) throw new ConfigError(`web.jobsTokenFile (--web.jobs-token-file): ${file} is empty`);
    return t;
  }
  const env = process.env[config.jobs.tokenEnv]?.trim();
  return env || undefined;
}

export function createRegistry(
  config: Config,
  log: Logger,
  opts: { ledger?: boolean; resume?: boolean; clock?: () => number } = {},
): { registry: JobTracker; ledger?: Ledger } {
  let ledger: Ledger | undefined;
  if (opts.ledger !== false && config.jobs.ledger) {
    try {
      ledger = new Ledger(config.jobs.ledger, log);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      log.warn('jobs ledger unavailable: job totals are kept in memory only', { ledger: config.jobs.ledger, err: (err as Error).message });
    }
  }
  const registry = new JobTracker({
    procfs: config.paths.procfs,
    log: log.child({ component: 'jobs' }),
    ledger,
    clock: opts.clock,
    liveCap: config.jobs.liveCap,
    retentionMs: config.jobs.retention,
    checkpointMs: config.jobs.checkpointInterval,
    endedCap: config.jobs.endedCap,
    ledgerRetentionMs: config.jobs.ledgerRetention,
    fullScanEvery: FULL_SCAN_EVERY,
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

/** Scheduler metadata (Slurm, Kubernetes) for new jobs, applied through the registry's describe(). */
export function attachMetadata(
  tracker: JobTracker,
  config: Pick<Config, 'jobs'>,
  log: Logger,
  resolvers?: MetadataResolver[],
): MetadataService {
  const mlog = log.child({ component: 'job-metadata' });
  const { registry } = tracker;
  const service = new MetadataService(
    resolvers ?? defaultResolvers(config.jobs.discovery, mlog),
    (id, meta) => {
      if (registry.describe(id, meta)) mlog.info('job metadata resolved', { job_id: id, name: meta.name, user: meta.user });
    },
    mlog,
  );
  registry.onJobAdded = (job) => service.request(job.scheduler, job.id);
  return service;
}
