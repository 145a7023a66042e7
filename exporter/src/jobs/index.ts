import { readFileSync } from 'fs';
import type { Config } from '../config';
import type { Logger } from '../util/log';
import { JobAccess } from '../web/job-access';
import { createJobsRouter } from './api';
import { Ledger } from './ledger';
import { JobRegistry } from './tracker';
import type { Router } from 'express';

/** Builds the jobs registry (with its ledger, resumed) and the API router from the configuration. */

export interface JobsSetup {
  registry: JobRegistry;
  router: Router;
  /** Who may call the API (also lets kernel-identified local callers past basic auth). */
  access: JobAccess;
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
  const access = new JobAccess({ procfs: config.paths.procfs, sysfs: config.paths.sysfs, token: jobsToken(config) });
  const router = createJobsRouter({ registry, log, access });
  return { registry, router, access, ledger, close: () => registry.close() };
}
