import type { Command } from 'commander';
import type { Config } from '../config';
import { ConfigError, loadConfigFile, parseConfig, setPath } from '../config';
import { startExporter } from '../exporter';
import type * as JobsModule from '../jobs';
import { createLogger, type LogFormat, type LogLevel } from '../util/log';
import { formatDuration } from '../util/duration';
import { apiCredentialsExempt, serverLimits } from '../web';
import { WebFront } from '../web/web-server';

/** Flags in Prometheus style; each maps onto a config field and overrides the file. */
export const SERVE_FLAGS: Array<{ flag: string; field: string; help: string }> = [
  { flag: 'web.listen-address', field: 'web.listenAddress', help: 'address to listen on (default ":10042")' },
  { flag: 'web.telemetry-path', field: 'web.telemetryPath', help: 'path under which to expose metrics (default "/metrics")' },
  { flag: 'web.jobs-token-file', field: 'web.jobsTokenFile', help: 'file holding the bearer token for job API mutations' },
  {
    flag: 'web.config.file',
    field: 'web.configFile',
    help: 'exporter-toolkit web configuration: TLS, basic auth, headers (reloaded on SIGHUP)',
  },
  { flag: 'web.header-timeout', field: 'web.headerTimeout', help: 'time a client has to send request headers (default 10s)' },
  { flag: 'web.request-timeout', field: 'web.requestTimeout', help: 'time a client has to send a whole request (default 60s)' },
  { flag: 'web.keep-alive-timeout', field: 'web.keepAliveTimeout', help: 'idle keep-alive connections close after (default 5s)' },
  { flag: 'web.max-connections', field: 'web.maxConnections', help: 'most open HTTP connections; more are closed at once (default 512)' },
  { flag: 'path.sysfs', field: 'paths.sysfs', help: 'sysfs mount point (default "/sys")' },
  { flag: 'path.procfs', field: 'paths.procfs', help: 'procfs mount point (default "/proc")' },
  { flag: 'sample.interval', field: 'sample.interval', help: 'sampling interval, e.g. 250ms, 1s (default 1s, minimum 100ms)' },
  { flag: 'sample.timeout', field: 'sample.timeout', help: 'per-source read timeout (default 80% of the interval)' },
  { flag: 'log.level', field: 'log.level', help: 'debug, info, warn or error (default info)' },
  { flag: 'log.format', field: 'log.format', help: 'logfmt or json (default logfmt)' },
  { flag: 'nvml.library', field: 'nvml.library', help: 'path of libnvidia-ml.so.1 (default: the dynamic loader finds it)' },
  { flag: 'amdsmi.library', field: 'amdsmi.library', help: 'path of libamd_smi.so for AMD GPUs (default: the dynamic loader finds it)' },
  { flag: 'jobs.ledger', field: 'jobs.ledger', help: 'SQLite ledger of job totals (default "/var/lib/jouleflow/jobs.db"; "" = none)' },
  { flag: 'jobs.live-cap', field: 'jobs.liveCap', help: 'most running jobs at once (default 1000)' },
  { flag: 'jobs.retention', field: 'jobs.retention', help: 'how long ended jobs stay in the metrics (default 15m)' },
  { flag: 'jobs.ended-cap', field: 'jobs.endedCap', help: 'most ended jobs kept in the metrics and job list (default 1000)' },
  {
    flag: 'jobs.ledger-retention',
    field: 'jobs.ledgerRetention',
    help: 'how long ended jobs stay in the ledger (default 90d; 0 = forever)',
  },
  { flag: 'jobs.checkpoint-interval', field: 'jobs.checkpointInterval', help: 'how often job totals go to the ledger (default 5s)' },
  { flag: 'jobs.hpc-mapping-dir', field: 'jobs.discovery.hpcMappingDir', help: 'dcgm-exporter-style HPC job mapping directory' },
];

export function addServeFlags(cmd: Command): Command {
  cmd.option('--config.file <path>', 'YAML configuration file');
  for (const f of SERVE_FLAGS) cmd.option(`--${f.flag} <value>`, f.help);
  cmd.option('--demo', 'demo mode: jouleflow_build_info{mode="demo"} and a landing-page banner (also JOULEFLOW_DEMO=1)');
  return cmd;
}

/** Merges the config file and the flags, validates, and names the field (and flag) at fault. */
export async function resolveConfig(opts: Record<string, unknown>): Promise<Config> {
  const file = opts['config.file'] as string | undefined;
  const raw = (file ? await loadConfigFile(file) : {}) as Record<string, unknown>;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`config file ${file}: expected a mapping at the top level`);
  }
  for (const f of SERVE_FLAGS) {
    const key = f.flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const v = opts[key];
    if (v !== undefined) setPath(raw, f.field, v);
  }
  const origin = file ? `${file} and command-line flags` : 'command-line flags';
  try {
    return parseConfig(raw, origin);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    let msg = err.message;
    for (const f of SERVE_FLAGS) msg = msg.replace(new RegExp(`^(  ${f.field.replace('.', '\\.')}):`, 'm'), `$1 (--${f.flag}):`);
    throw new ConfigError(msg);
  }
}

export async function serve(opts: Record<string, unknown>): Promise<void> {
  const config = await resolveConfig(opts);
  const log = createLogger(config.log.level as LogLevel, config.log.format as LogFormat);
  const web = await WebFront.create(config.web.configFile, serverLimits(config), log);
  const demo = opts.demo === true || /^(1|true|yes)$/i.test(process.env.JOULEFLOW_DEMO ?? '');
  let jobs: ReturnType<typeof JobsModule.createJobs> | undefined;
  const exp = await startExporter(config, {
    log,
    mode: demo ? 'demo' : 'normal',
    // The jobs API (and express with it) loads while the sources initialise (cold start).
    jobsWhileInit: async () => {
      const { createJobs } = await import('../jobs');
      const j = (jobs = createJobs(config, log));
      web.exempt = apiCredentialsExempt(j.access);
      return {
        jobs: j.registry,
        routers: [{ path: '/api/v1', router: j.router }],
        notices: () => [`jobs: ${j.registry.runningCount} running (cap ${config.jobs.liveCap})`],
      };
    },
    web,
  });
  log.info('jouleflow exporter listening', {
    address: config.web.listenAddress,
    url: exp.url + config.web.telemetryPath,
    interval: formatDuration(config.sample.interval),
    sources: exp.sampler.statuses.map((s) => `${s.name}=${!s.present ? 'absent' : s.up ? 'up' : 'down'}`).join(','),
  });
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal });
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    exp.close().then(
      () => {
        jobs?.close();
        process.exit(0);
      },
      (err: Error) => {
        log.error('shutdown failed', { err: err.message });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => void web.reload());
}
