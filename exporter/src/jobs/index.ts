import type { Config } from '../config';
import { ConfigError } from '../config';
import type { Logger } from '../util/log';
import { JobAccess } from '../web/job-access';
import { readJobsToken } from '../web/token';
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
  /** Who may call the API (also lets kernel-identified local callers past basic auth). */
  access: JobAccess;
  ledger?: Ledger;
  close(): void;
}

/** The bearer token for the jobs API: --web.jobs-token-file, else the configured environment variable. */
export function jobsToken(config: Config): string | undefined {
  return readJobsToken(config.web.jobsTokenFile, 'web.jobsTokenFile (--web.jobs-token-file)', config.jobs.tokenEnv);
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
    cgroups: { sysfs: config.paths.sysfs, disksExclude: new RegExp(config.disks.exclude) },
    carbon: config.carbon,
    discovery: config.jobs.discovery,
  });
  if (opts.resume !== false) registry.resume();
  return { registry, ledger };
}

export function createJobs(config: Config, log: Logger): JobsSetup {
  const token = jobsToken(config); // before the ledger opens: a bad token file leaves nothing open
  const { registry, ledger } = createRegistry(config, log);
  const access = new JobAccess({ procfs: config.paths.procfs, sysfs: config.paths.sysfs, token });
  const router = createJobsRouter({ registry, log, access });
  const metadata = attachMetadata(registry, config, log);
  return {
    registry,
    router,
    access,
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
